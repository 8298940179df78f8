"""In-context inference for LaVin-DiT with packed classifier-free guidance.

A request is N in-context pairs (input_i, output_i) and a query; the model predicts the query's
output. Condition frames are [in_1, out_1, ..., in_N, out_N, query]; the unconditional branch
replaces the pairs by one all-zero latent frame and keeps the query ([0, query]). Every step packs the
conditional and unconditional branches of every request into ONE forward (block-diagonal attention
keeps them apart), then takes an Euler step with v = v_u + s (v_c - v_u).

Latents are the VAE's 16-channel frames (16, h, w) (or (16, 1, h, w)), h and w even; they are
normalised as (z - 0.032470703125) * 1.08936170213 before the model and back after.
"""

from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from lavin_fast.models.jdit.layout import JointLayout
from lavin_fast.models.jdit.patches import LATENT_CHANNELS, TOKEN_DIM, patchify, unpatchify
from lavin_fast.sampling.grids import time_grid

LATENT_SHIFT = 0.032470703125
LATENT_SCALE = 1.08936170213
DEFAULT_CFG_SCALE = 1.5


@dataclass
class InContextRequest:
    """pairs: [(input, output)]; query. Latent frames (16, h, w), or images (3, H, W) in [-1, 1] when
    the sampler is given a VAE."""
    pairs: list = field(default_factory=list)
    query: torch.Tensor = None


def normalize_latent(z):
    return (z - LATENT_SHIFT) * LATENT_SCALE


def denormalize_latent(z):
    return z / LATENT_SCALE + LATENT_SHIFT


def _as_frame(z, what):
    if z.dim() == 4 and z.shape[1] == 1:
        z = z[:, 0]
    if z.dim() != 3 or z.shape[0] != LATENT_CHANNELS or z.shape[1] % 2 or z.shape[2] % 2:
        raise ValueError(f"{what}: a latent frame must be ({LATENT_CHANNELS}, h, w) with even h and w, "
                         f"got {tuple(z.shape)}")
    return z


def _tokens(z):
    """(16, h, w) raw latent -> normalised patchified (1, h/2, w/2, 64)."""
    return patchify(normalize_latent(z)[None, :, None])[0]


def _unwrap(out, *names):
    if isinstance(out, torch.Tensor):
        return out
    for n in names:
        if hasattr(out, n):
            out = getattr(out, n)
            return out() if callable(out) else out
    return out[0] if isinstance(out, (tuple, list)) else out


def encode_image(vae, image):
    """(3, H, W) in [-1, 1] -> latent frame (16, H/8, W/8): the posterior mean of a 1-frame clip.
    Accepts VAEs returning a tensor, a (mean, ...) tuple, a distribution (.mean / .mode()) or a
    diffusers-style output (.latent_dist)."""
    out = vae.encode(image[None, :, None])
    if hasattr(out, "latent_dist"):
        out = out.latent_dist
    z = _unwrap(out, "mean", "mode")
    if z.shape[1] == 2 * LATENT_CHANNELS:  # raw moments (mean, logvar)
        z = z[:, :LATENT_CHANNELS]
    return z[0, :, 0]


def decode_latent(vae, z):
    """Latent frame (16, h, w) -> image (3, 8h, 8w)."""
    return _unwrap(vae.decode(z[None, :, None]), "sample")[0, :, 0]


def _prepare(requests, vae):
    """Per request: (condition tokens (2N+1, H, W, 64), unconditional tokens (2, H, W, 64))."""
    prepared = []
    for r, req in enumerate(requests):
        frames = [f for pair in req.pairs for f in pair] + [req.query]
        if vae is not None:
            frames = [encode_image(vae, f) if f.shape[0] == 3 else f for f in frames]
        frames = [_as_frame(f, f"request {r}") for f in frames]
        if any(f.shape != frames[-1].shape for f in frames):
            raise ValueError(f"request {r}: every frame must have the query's latent shape "
                             f"{tuple(frames[-1].shape)}, got {[tuple(f.shape) for f in frames]}")
        cond = torch.cat([_tokens(f) for f in frames])
        query = cond[-1:]
        prepared.append((cond, torch.cat([torch.zeros_like(query), query])))
    return prepared


def _cfg(v_c, v_u, scale):
    return v_u + scale * (v_c - v_u)


class _PackedCFG:
    """One forward for both branches of every request: samples [c_0, u_0, c_1, u_1, ...]."""

    def __init__(self, model, prepared):
        self.model = model
        shapes = []
        for cond, uncond in prepared:
            _, h, w, _ = cond.shape
            shapes += [(cond.shape[0], 1, h, w), (uncond.shape[0], 1, h, w)]
        self.layout = JointLayout.build(shapes, device=prepared[0][0].device)
        self.cond_tokens = torch.cat([t.reshape(-1, TOKEN_DIM) for c, u in prepared for t in (c, u)])
        self.sizes = [c.shape[1] * c.shape[2] for c, _ in prepared]

    def velocity(self, xs, t, scale):
        x_tokens = torch.cat([x.reshape(-1, TOKEN_DIM) for x in xs for _ in range(2)])
        tt = torch.full((2 * len(xs),), float(t), device=x_tokens.device, dtype=x_tokens.dtype)
        v = self.model.forward_tokens(self.cond_tokens, x_tokens, tt, self.layout)
        pieces = torch.split(v, [n for n in self.sizes for _ in range(2)])
        return [_cfg(pieces[2 * i], pieces[2 * i + 1], scale).reshape(x.shape) for i, x in enumerate(xs)]


class _TwoPassCFG:
    """The released way: a separate forward per branch and request."""

    def __init__(self, model, prepared):
        self.model, self.prepared = model, prepared
        self.layouts = [[JointLayout.build([(b.shape[0], 1, b.shape[1], b.shape[2])], device=b.device)
                         for b in pair] for pair in prepared]

    def velocity(self, xs, t, scale):
        out = []
        for x, branches, layouts in zip(xs, self.prepared, self.layouts):
            tt = torch.full((1,), float(t), device=x.device, dtype=x.dtype)
            v_c, v_u = (self.model.forward_tokens(b.reshape(-1, TOKEN_DIM), x.reshape(-1, TOKEN_DIM), tt, lay)
                        for b, lay in zip(branches, layouts))
            out.append(_cfg(v_c, v_u, scale).reshape(x.shape))
        return out


@torch.no_grad()
def sample(model, requests, *, grid="released", cfg_scale=DEFAULT_CFG_SCALE, vae=None, generator=None,
           noise=None, packed=True, progress=None, stream=None):
    """Runs in-context inference for every request; returns one result per request: the predicted
    latent frame (16, h, w), or the decoded image (3, H, W) when a VAE is given.

    grid: "released" (20 points), an int N (uniform N steps) or explicit points; packed: one forward
    per step for all requests and both CFG branches (False: two forwards per request, as released);
    noise: optional list of initial noise (1, h/2, w/2, 64) per request (else drawn from generator);
    progress: a tqdm bar of the Euler steps on `stream` (default stderr): None shows it on a terminal
    only, True always, False never."""
    if not requests:
        return []
    ts = time_grid(grid)
    prepared = _prepare(requests, vae)
    if noise is None:
        noise = [torch.randn(q.shape[1:], generator=generator).to(q)[None] for _, q in prepared]
    xs = [n.clone() for n in noise]
    runner = (_PackedCFG if packed else _TwoPassCFG)(model, prepared)
    desc = f"sampling {len(requests)} request{'s' * (len(requests) > 1)}"
    with tqdm(total=len(ts) - 1, desc=desc, unit="step", file=stream,
              disable=None if progress is None else not progress) as bar:
        for t0, t1 in zip(ts[:-1], ts[1:]):
            vs = runner.velocity(xs, t0, cfg_scale)
            xs = [x + (t1 - t0) * v for x, v in zip(xs, vs)]
            bar.update()
    results = []
    for x in xs:
        z = denormalize_latent(unpatchify(x[None])[0, :, 0])
        results.append(decode_latent(vae, z) if vae is not None else z)
    return results
