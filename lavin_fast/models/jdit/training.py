"""Flow-matching training of the J-DiT on packed batches (LaVin-DiT's objective).

Path x_t = t * data + (1 - t) * noise (t = 0 noise, t = 1 data), velocity target data - noise,
t ~ logit-normal (sigmoid of a standard normal), one t per sample.
"""

import torch

from lavin_fast.models.jdit.layout import JointLayout
from lavin_fast.models.jdit.patches import TOKEN_DIM


def logit_normal(n, generator=None, device=None, mean=0.0, std=1.0):
    """(n,) times sigmoid(N(mean, std^2))."""
    return torch.sigmoid(torch.randn(n, generator=generator) * std + mean).to(device)


def flow_matching_loss(model, conds, targets, t=None, noise=None, generator=None, reduction="sample"):
    """Loss of `model` on a packed batch of samples of any shape.

    conds: list of (T_c, H, W, 64) patchified condition latents; targets: list of (T_x, H, W, 64)
    patchified clean target latents (same H, W per sample); t (S,) or sampled logit-normal; noise: list
    like targets or drawn with `generator`. reduction "sample": mean squared error per sample, then
    the mean over samples (every sample weighs the same whatever its resolution); "token": mean over
    all target tokens. Returns (loss, t).
    """
    if len(conds) != len(targets):
        raise ValueError(f"flow_matching_loss: {len(conds)} conditions but {len(targets)} targets")
    s = len(targets)
    dev = targets[0].device
    if t is None:
        t = logit_normal(s, generator, dev)
    if noise is None:
        noise = [torch.randn(x.shape, generator=generator).to(device=dev, dtype=x.dtype) for x in targets]
    shapes = [(c.shape[0], x.shape[0], x.shape[1], x.shape[2]) for c, x in zip(conds, targets)]
    layout = JointLayout.build(shapes, device=dev)
    lengths = layout.cu_x.diff().long()
    data = torch.cat([x.reshape(-1, TOKEN_DIM) for x in targets])
    eps = torch.cat([n.reshape(-1, TOKEN_DIM) for n in noise])
    tt = torch.repeat_interleave(t.to(data.dtype), lengths, output_size=data.shape[0])[:, None]
    x_t = tt * data + (1 - tt) * eps
    v = model.forward_tokens(torch.cat([c.reshape(-1, TOKEN_DIM) for c in conds]), x_t, t, layout)
    err = (v.float() - (data - eps).float()).pow(2).mean(-1)
    if reduction == "token":
        return err.mean(), t
    seg = torch.repeat_interleave(torch.arange(s, device=dev), lengths, output_size=err.shape[0])
    per_sample = torch.zeros(s, device=dev).index_add_(0, seg, err) / lengths.to(err.dtype)
    return per_sample.mean(), t
