"""Varlen attention on the GPU, bf16, at the released model's head layout (32 query / 8 KV heads,
head_dim 72): lavin_fast against the strongest peers there, forward and forward+backward (GPU only):

  sdpa_flash, sdpa_cudnn  F.scaled_dot_product_attention pinned to its FlashAttention or cuDNN backend
                          (one call per segment for a packed batch; no arbitrary mask, so no
                          frame-causal case); enable_gqa, or K/V repeated per query head inside the
                          timed call where the backend refuses GQA
  flex                    FlexAttention under torch.compile with a document (and frame) block mask
  flash_attn              flash-attn's flash_attn_varlen_func when the package is installed

torch.compile of the reference attention is no peer here: it materialises (H, T, T) scores (13 GB at
T = 10240). Every peer's forward output is checked against lavin_fast's once, outside the timed
region, so all of them compute the same attention. FLOPs as bench/bench_attention.py counts them:
forward 4 * H * D * visible pairs, forward+backward 3.5x that.
"""

import functools
import importlib.util
import itertools

import pytest
import torch
import torch.nn.functional as F

from bench.bench_attention import Case  # one case type (sizes, FLOPs) for the CPU and GPU suites
from lavin_fast.attention import varlen_attention

REL_TOL = 2e-2  # bf16 outputs: |peer - lavin_fast| / |lavin_fast| (Frobenius)


# 4 in-context pairs at 512 x 512 = 10 frames of 32 x 32 latent tokens; a NaViT-packed batch of four
# requests of different sizes; the in-context sequence under the frame block-causal mask.
RELEASED_HEADS = dict(heads=32, kv_heads=8, head_dim=72)
CASES = [
    Case("released 10x1024", (10240,), **RELEASED_HEADS),
    Case("packed 4096+3072+2048+1024", (4096, 3072, 2048, 1024), **RELEASED_HEADS),
    Case("released 10x1024 frame-causal", (10240,), frame_tokens=1024, **RELEASED_HEADS),
]
QUICK_CASES = {"released 10x1024", "packed 4096+3072+2048+1024"}
IMPLS = ("lavin_fast", "sdpa_flash", "sdpa_cudnn", "flex", "flash_attn")
PASSES = ("fwd", "fwd+bwd")


class Inputs:
    def __init__(self, case, device, requires_grad, dtype=torch.bfloat16):
        g = torch.Generator(device).manual_seed(0)
        T, H, Hk, D = case.total, case.heads, case.kv_heads, case.head_dim

        def randn(*shape):
            return torch.randn(*shape, device=device, dtype=dtype, generator=g).requires_grad_(requires_grad)

        self.q, self.k, self.v = randn(T, H, D), randn(T, Hk, D), randn(T, Hk, D)
        self.grad_out = torch.randn(T, H, D, device=device, dtype=dtype, generator=g)
        self.cu = torch.tensor([0, *itertools.accumulate(case.lengths)], dtype=torch.int32, device=device)
        self.bounds = [0, *itertools.accumulate(case.lengths)]
        self.max = max(case.lengths)
        self.frames = case.frames().to(device) if case.frame_tokens else None
        self.case = case

    def leaves(self):
        return (self.q, self.k, self.v)


def _bhsd(t):  # (T, H, D) -> (1, H, T, D), a view as SDPA / FlexAttention take it
    return t.transpose(0, 1).unsqueeze(0)


def _thd(o):  # (1, H, T, D) -> (T, H, D)
    return o[0].transpose(0, 1)


def lavin(x):
    kw = dict(frame_ids_q=x.frames, frame_ids_k=x.frames) if x.frames is not None else {}
    return varlen_attention(x.q, x.k, x.v, x.cu, x.cu, x.max, x.max, **kw)[0]


def sdpa(x, backend, gqa):
    """One SDPA call per segment on `backend`; gqa=False repeats K/V per query head in the call."""
    from torch.nn.attention import sdpa_kernel

    rep = x.case.heads // x.case.kv_heads
    segments = list(zip(x.bounds, x.bounds[1:]))

    def call():
        q, k, v = (_bhsd(t) for t in x.leaves())
        if not gqa:
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        with sdpa_kernel(backend):
            outs = [F.scaled_dot_product_attention(q[:, :, a:b], k[:, :, a:b], v[:, :, a:b], enable_gqa=gqa)
                    for a, b in segments]
        return _thd(outs[0] if len(outs) == 1 else torch.cat(outs, dim=2))

    return call


@functools.cache
def _flex_compiled():
    from torch.nn.attention.flex_attention import flex_attention
    return torch.compile(flex_attention, dynamic=False)


def flex(x):
    from torch.nn.attention.flex_attention import create_block_mask

    block_mask = None
    if len(x.case.lengths) > 1 or x.frames is not None:  # built once, outside the timed region
        lengths = torch.tensor(x.case.lengths, device=x.q.device)
        seg = torch.repeat_interleave(torch.arange(len(x.case.lengths), device=x.q.device), lengths)
        frames = x.frames

        def mask_mod(b, h, qi, ki):
            same = seg[qi] == seg[ki]
            return same & (frames[ki] <= frames[qi]) if frames is not None else same

        block_mask = create_block_mask(mask_mod, 1, None, x.case.total, x.case.total, device=x.q.device)

    def call():
        q, k, v = (_bhsd(t) for t in x.leaves())
        return _thd(_flex_compiled()(q, k, v, block_mask=block_mask, enable_gqa=True))

    return call


def flash_attn(x):
    from flash_attn import flash_attn_varlen_func
    return lambda: flash_attn_varlen_func(x.q, x.k, x.v, x.cu, x.cu, x.max, x.max)


def _sdpa_backends():
    from torch.nn.attention import SDPBackend
    return {"sdpa_flash": SDPBackend.FLASH_ATTENTION, "sdpa_cudnn": SDPBackend.CUDNN_ATTENTION}


def _peer_fns(impl, x):
    """The candidate forwards of a peer, first choice first."""
    if impl.startswith("sdpa"):
        if x.frames is not None:
            pytest.skip(f"{impl}: the flash / cuDNN SDPA backends take no arbitrary mask (frame-causal)")
        return [(f"enable_gqa={gqa}", sdpa(x, _sdpa_backends()[impl], gqa)) for gqa in (True, False)]
    if impl == "flex":
        return [("", flex(x))]
    if impl == "flash_attn":
        if importlib.util.find_spec("flash_attn") is None:
            pytest.skip("flash_attn: flash-attn is not installed")
        if x.frames is not None:
            pytest.skip("flash_attn: no frame block-causal mask in flash-attn")
        return [("", flash_attn(x))]
    raise ValueError(impl)


def make_step(impl, x, passes, check=True):
    """The timed function of `impl` for `passes`. A peer that raises on its first call here (no kernel
    for this layout, GQA, or this GPU) is skipped with the error as the reason, which the report lists;
    SDPA falls back to K/V repeated per query head first. check: the peer's forward output against
    lavin_fast's, once, outside any timing."""
    if impl == "lavin_fast":
        return step(lambda: lavin(x), x, passes)
    errors = []
    for label, fn in _peer_fns(impl, x):
        try:
            step(fn, x, passes)()
        except Exception as e:  # noqa: BLE001 - any failure of a peer is reported as its skip reason
            errors.append(f"{label + ': ' if label else ''}{type(e).__name__}: {str(e).splitlines()[0][:200]}")
            continue
        if check:
            with torch.no_grad():
                got, want = fn().float(), lavin(x).float()
            err = ((got - want).norm() / want.norm()).item()
            assert err < REL_TOL, f"{impl} computes another attention: relative error {err:.3g} vs lavin_fast"
        return step(fn, x, passes)
    pytest.skip(f"{impl} failed here: " + "; ".join(errors))


def step(fn, x, passes):
    if passes == "fwd":
        def fwd():
            with torch.no_grad():
                fn()
        return fwd

    def fwd_bwd():
        torch.autograd.grad(fn(), x.leaves(), x.grad_out)

    return fwd_bwd


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("passes", PASSES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name.replace(" ", "_"))
def test_attention_gpu(benchmark, harness, device, quick, case, passes, impl):
    if device.type != "cuda":
        pytest.skip("GPU suite (--device cuda)")
    if quick and case.name not in QUICK_CASES:
        pytest.skip("--quick")
    x = Inputs(case, device, requires_grad=passes != "fwd")
    fn = make_step(impl, x, passes)
    T, H, Hk, D = case.total, case.heads, case.kv_heads, case.head_dim
    harness.run(benchmark, fn, group=f"attention {case.name} {passes}",
                bytes_moved=2 * D * T * (2 * H + 2 * Hk) * (1 if passes == "fwd" else 2), elements=T * H * D,
                kind="attention", case=case.name, passes=passes, impl=impl, dtype="bf16",
                flops=case.flops(passes), T=T, H=H, H_kv=Hk, D=D, segments=len(case.lengths))
