"""Varlen attention, fp32 on the CPU: lavin_fast vs FlexAttention (torch.compile, document mask), SDPA
looping over segments and SDPA with a dense block mask, forward and forward+backward; an fp32 matmul
in the same run (the rate the report divides by); and a tile-sparsity sweep. Ratios are only
meaningful between benchmarks of the same run (the machine is shared).

FLOPs (bench/report_attention.py): forward 4 * H * D * (visible query-key pairs), forward+backward
3.5x that (FlashAttention's convention: backward 2.5x forward)."""

import functools
import itertools
from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

from lavin_fast.attention import TileMask, varlen_attention
from lavin_fast.linear import linear
from lavin_fast.reference.attention import segment_mask


@dataclass(frozen=True)
class Case:
    name: str
    lengths: tuple
    heads: int
    kv_heads: int
    head_dim: int
    frame_tokens: int = 0  # > 0: frame block-causal mask with frames of this many tokens

    @property
    def total(self):
        return sum(self.lengths)

    def frames(self):
        return torch.cat([torch.arange(n) // self.frame_tokens for n in self.lengths]).int()

    def visible_pairs(self):
        if not self.frame_tokens:
            return sum(n * n for n in self.lengths)
        f = self.frames()
        return int(sum(segment_mask(n, n, frames_q=f[a:a + n], frames_k=f[a:a + n]).sum()
                       for a, n in zip(itertools.accumulate(self.lengths, initial=0), self.lengths)))

    def flops(self, passes):
        fwd = 4 * self.heads * self.head_dim * self.visible_pairs()
        return fwd if passes == "fwd" else 3.5 * fwd


CASES = [
    # NaViT-style packing of four images (the anchors' case).
    Case("navit 256+512+192+64", (256, 512, 192, 64), 8, 2, 64),
    # LaVin-DiT in-context layout: 4 pairs of 256x256 images plus query and target = 10 frames of
    # 256 tokens, joint attention; and with the frame block-causal mask.
    Case("lavin 10x256", (2560,), 8, 2, 72),
    Case("lavin 10x256 frame-causal", (2560,), 8, 2, 72, frame_tokens=256),
]
IMPLS = ("lavin_fast", "flex", "sdpa_loop", "sdpa_dense")
PASSES = ("fwd", "fwd+bwd")


class Inputs:
    def __init__(self, case, requires_grad):
        g = torch.Generator().manual_seed(0)
        T, H, Hk, D = case.total, case.heads, case.kv_heads, case.head_dim
        self.q = torch.randn(T, H, D, generator=g).requires_grad_(requires_grad)
        self.k = torch.randn(T, Hk, D, generator=g).requires_grad_(requires_grad)
        self.v = torch.randn(T, Hk, D, generator=g).requires_grad_(requires_grad)
        self.cu = torch.tensor([0, *itertools.accumulate(case.lengths)], dtype=torch.int32)
        self.max = max(case.lengths)
        self.frames = case.frames() if case.frame_tokens else None
        self.grad_out = torch.randn(T, H, D, generator=g)
        self.case = case

    def leaves(self):
        return (self.q, self.k, self.v)


def _lavin(x, tile_mask=None):
    kw = dict(frame_ids_q=x.frames, frame_ids_k=x.frames) if x.frames is not None else {}
    return varlen_attention(x.q, x.k, x.v, x.cu, x.cu, x.max, x.max, tile_mask=tile_mask, **kw)[0]


def _bhsd(t):  # (T, H, D) -> (1, H, T, D), a view as SDPA/flex take it
    return t.transpose(0, 1).unsqueeze(0)


def _dense_mask(x):
    """(T, T) bool: same segment (and frame order) — what an SDPA fallback materialises."""
    seg = torch.repeat_interleave(torch.arange(len(x.case.lengths)), torch.tensor(x.case.lengths))
    m = seg[:, None] == seg[None, :]
    if x.frames is not None:
        m &= x.frames[None, :] <= x.frames[:, None]
    return m


@functools.cache
def _flex():
    from torch.nn.attention.flex_attention import flex_attention
    return torch.compile(flex_attention, dynamic=False)


def _flex_block_mask(x):
    """Built once per case, outside the timed region."""
    from torch.nn.attention.flex_attention import create_block_mask
    seg = torch.repeat_interleave(torch.arange(len(x.case.lengths)), torch.tensor(x.case.lengths))
    frames = x.frames

    def mask_mod(b, h, qi, ki):
        same = seg[qi] == seg[ki]
        return same & (frames[ki] <= frames[qi]) if frames is not None else same

    return create_block_mask(mask_mod, 1, None, x.case.total, x.case.total, device="cpu")


def make_fn(impl, x):
    if impl == "lavin_fast":
        return lambda: _lavin(x)
    q, k, v = (_bhsd(t) for t in x.leaves())
    if impl == "flex":
        bm = _flex_block_mask(x)
        return lambda: _flex()(q, k, v, block_mask=bm, enable_gqa=True)
    if impl == "sdpa_dense":
        m = _dense_mask(x)
        return lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=m, enable_gqa=True)
    bounds = x.cu.tolist()
    masks = [None if x.frames is None else
             (x.frames[a:b][None, :] <= x.frames[a:b][:, None]) for a, b in zip(bounds, bounds[1:])]

    def loop():
        return torch.cat([F.scaled_dot_product_attention(q[:, :, a:b], k[:, :, a:b], v[:, :, a:b],
                                                         attn_mask=m, enable_gqa=True)
                          for (a, b), m in zip(zip(bounds, bounds[1:]), masks)], dim=2)

    return loop


def _step(fn, x, passes):
    if passes == "fwd":
        def fwd():
            with torch.no_grad():
                fn()
        return fwd

    def fwd_bwd():
        out = fn()
        g = x.grad_out if out.dim() == 3 else _bhsd(x.grad_out)
        torch.autograd.grad(out, x.leaves(), g)

    return fwd_bwd


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("passes", PASSES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name.replace(" ", "_"))
def test_attention(benchmark, harness, device, quick, case, passes, impl):
    if device.type != "cpu":
        pytest.skip("the attention benchmarks compare CPU peers")
    if impl == "flex" and passes != "fwd":
        pytest.skip("FlexAttention has no backward on the CPU (torch 2.14)")
    if quick and case.frame_tokens:
        pytest.skip("--quick")
    x = Inputs(case, requires_grad=passes != "fwd")
    fn = _step(make_fn(impl, x), x, passes)
    T, H, Hk, D = case.total, case.heads, case.kv_heads, case.head_dim
    harness.run(benchmark, fn, group=f"attention {case.name} {passes}",
                bytes_moved=4 * D * T * (2 * H + 2 * Hk), elements=T * H * D, kind="attention",
                case=case.name, passes=passes, impl=impl, dtype="fp32", flops=case.flops(passes),
                T=T, H=H, H_kv=Hk, D=D, segments=len(case.lengths))


@pytest.mark.parametrize("impl", ["torch.mm", "onednn"])
def test_matmul(benchmark, harness, device, impl):
    """fp32 matmul 2048^3, the rate attention kernels are compared with: torch.mm (MKL, which takes its
    AVX2 path on AMD processors) and oneDNN's inner product (lavin_fast.linear's CPU path), the faster
    of which is the machine's real fp32 GEMM rate."""
    if device.type != "cpu":
        pytest.skip("CPU only")
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2048, 2048, generator=g), torch.randn(2048, 2048, generator=g)
    out = torch.empty(2048, 2048)
    fn = (lambda: torch.mm(a, b, out=out)) if impl == "torch.mm" else (lambda: linear(a, b))
    harness.run(benchmark, fn, group="attention matmul",
                bytes_moved=3 * 4 * 2048 * 2048, elements=2048 * 2048, kind="attention_matmul",
                case="matmul 2048^3", passes="fwd", impl=impl, dtype="fp32",
                flops=2 * 2048 ** 3)


@pytest.mark.parametrize("density", [1.0, 0.5, 0.25, 0.125])
def test_tile_sparsity(benchmark, harness, device, quick, density):
    """Forward time against the fraction of visible 64x64 tiles (random tile masks, LaVin layout)."""
    if device.type != "cpu":
        pytest.skip("CPU only")
    case = CASES[1]
    x = Inputs(case, requires_grad=False)
    tm = TileMask.random(1, x.max, x.max, density, 64, 64, generator=torch.Generator().manual_seed(1))
    visible = tm.density()

    def fwd():
        with torch.no_grad():
            _lavin(x, tm)

    harness.run(benchmark, fwd, group="attention tile sparsity", bytes_moved=0, elements=0,
                kind="attention_sparsity", case=case.name, passes="fwd", impl="lavin_fast",
                dtype="fp32", density=visible, flops=case.flops("fwd") * visible)
