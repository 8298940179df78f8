"""The checks each instruction-set variant of the CPU kernels must pass, one function per op. They run
in a subprocess per variant (ATEN_CPU_CAPABILITY picks the variant once per process), started by
tests/test_cpu_isa.py; each compares against the float64 reference with outputs poisoned."""

import torch

import lavin_fast
import lavin_fast.reference as ref
from lavin_fast.attention import varlen_attention
from lavin_fast.conv import causal_conv3d
from tests.attention_cases import make_problem
from tests.helpers import assert_close, assert_grad_close, cu_seqlens, f64, randn


def attention():
    """Forward and backward, fp32 and bf16, a head dim that is not a multiple of any vector width."""
    for dtype in (torch.float32, torch.bfloat16):
        for D in (7, 72):
            args, kw = make_problem(D, n_segments=3, max_len=90, H=4, H_kv=2, D=D, masks="all", dtype=dtype)
            q, k, v, *rest = args
            leaves = [t.clone().requires_grad_() for t in (q, k, v)]
            out, _ = varlen_attention(*leaves, *rest, **kw)
            refs = [f64(t).requires_grad_() for t in (q, k, v)]
            ref_out, _ = ref.varlen_attention(*refs, *rest, **kw)
            assert_close(out, ref_out, dtype, f"{dtype} {D}")
            g = randn(*out.shape, dtype=dtype)
            out.backward(g)
            ref_out.backward(f64(g))
            for a, b in zip(leaves, refs):
                assert_grad_close(a.grad, b.grad, dtype, f"{dtype} {D}")


def causal_conv3d_fp32():
    """The fp32 path's NCDHW <-> channels-last vector transpose (common/cpu_transpose.h): channel counts
    and frame sizes on and off the 8- and 16-wide blocks, a cache, channels-last input, stride 2."""
    for n, c, o, h, w in ((1, 37, 21, 9, 11), (2, 32, 16, 8, 8), (1, 16, 48, 4, 12)):
        x = randn(n, c, 5, h, w)
        wt, b = randn(o, c, 3, 3, 3, scale=(27 * c) ** -0.5), randn(o)
        cache = randn(n, c, 2, h, w)
        for xi in (x, x.contiguous(memory_format=torch.channels_last_3d)):
            for kw in ({}, {"cache": cache}, {"stride": (2, 1, 1)}):
                got = causal_conv3d(xi, wt, b, spatial_padding=1, **kw)
                exp = ref.causal_conv3d(f64(x), f64(wt), f64(b), spatial_padding=1,
                                        **{k: f64(v) if torch.is_tensor(v) else v for k, v in kw.items()})
                assert_close(got, exp, torch.float32, f"n={n} c={c} o={o} {h}x{w} {sorted(kw)}")


def rms_norm_modulate():
    """Forward and backward in fp32, bf16 and fp16, widths off every vector width, an empty segment."""
    torch.manual_seed(0)
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        for dim in (1, 15, 17, 33, 72, 2305):
            cu = cu_seqlens([3, 0, 1, 8])
            x = randn(12, dim, dtype=dtype).requires_grad_(True)
            s = randn(4, dim, dtype=dtype).requires_grad_(True)
            b = randn(4, dim, dtype=dtype).requires_grad_(True)
            xr, sr, br = (f64(t).requires_grad_(True) for t in (x, s, b))
            g = randn(12, dim, dtype=dtype)
            y = lavin_fast.rms_norm_modulate(x, s, b, cu_seqlens=cu)
            yr = ref.rms_norm_modulate(xr, sr, br, cu_seqlens=cu)
            assert_close(y, yr, dtype, f"{dtype} {dim}")
            y.backward(g)
            yr.backward(f64(g))
            base = [t.detach().clone().requires_grad_(True) for t in (x, s, b)]
            ref.rms_norm_modulate(*base, cu_seqlens=cu).backward(g)
            for t, tr, tb in zip((x, s, b), (xr, sr, br), base):
                assert_grad_close(t.grad, tr.grad, dtype, f"{dtype} {dim}", baseline=tb.grad)


def qk_norm_rope():
    """Both pairings (the interleaved pair swap is ISA-specific code), sections on and off the vector
    width, both cos/sin sources (table and direct), positions over the whole int32 range."""
    torch.manual_seed(0)
    for dtype in (torch.float32, torch.bfloat16):
        for heads, d, sections, inter in ((8, 72, None, False), (8, 72, None, True), (2, 128, (16, 56, 56), False),
                                         (3, 64, (0, 32, 32), True)):
            for low, high in ((0, 30), (0, 300000), (-2**31, 2**31)):
                x = randn(13, heads * d, dtype=dtype).requires_grad_(True)
                w = randn(heads * d, offset=1.0, dtype=dtype).requires_grad_(True)
                pos = torch.randint(low, high, (13, 3), dtype=torch.int64).to(torch.int32)
                g = randn(13, heads, d, dtype=dtype)
                kw = dict(sections=sections, interleaved=inter)
                y = lavin_fast.qk_norm_rope(x, w, pos, heads, **kw)
                xr, wr = f64(x).requires_grad_(True), f64(w).requires_grad_(True)
                yr = ref.qk_norm_rope(xr, wr, pos, heads, **kw)
                what = f"{dtype} {heads}x{d} {sections} {inter} {high}"
                assert_close(y, yr, dtype, what)
                gx, gw = torch.autograd.grad(y, (x, w), g)
                rx, rw = torch.autograd.grad(yr, (xr, wr), f64(g))
                xb, wb = x.detach().clone().requires_grad_(True), w.detach().clone().requires_grad_(True)
                bx, bw = torch.autograd.grad(ref.qk_norm_rope(xb, wb, pos, heads, **kw), (xb, wb), g)
                assert_grad_close(gx, rx, dtype, what, baseline=bx)
                assert_grad_close(gw, rw, dtype, what, baseline=bw)
