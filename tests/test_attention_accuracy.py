"""fp32 accuracy of varlen attention by FlashAttention's rule (its tests/test_flash_attn.py): against
the float64 reference, our error may be at most twice plain PyTorch's fp32 error (the reference
evaluated in fp32: dense masked softmax, max subtracted) plus 1e-5, for the output and for each
gradient. Sharp softmax (q scaled up to 1e4, where a row's mass sits on one key) is where a kernel that
recomputes P from an lse that is off by one ulp of the scores loses it; there the bound is 3x."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import lavin_fast as lf
from lavin_fast.reference import attention as ref
from tests.attention_cases import make_problem


def _run(fn, args, kw, grad_out, dtype):
    q, k, v = (a.detach().to(dtype).requires_grad_() for a in args[:3])
    out, _ = fn(q, k, v, *args[3:], **kw)
    out.backward(grad_out.to(dtype))
    return out.detach(), q.grad, k.grad, v.grad


def _check(args, kw, factor):
    grad_out = torch.randn(args[0].shape, dtype=torch.float64)
    exact = _run(ref.varlen_attention, args, kw, grad_out, torch.float64)
    pt = _run(ref.varlen_attention, args, kw, grad_out, torch.float32)
    ours = _run(lf.varlen_attention, args, kw, grad_out, torch.float32)
    for name, o, p, e in zip(("out", "dq", "dk", "dv"), ours, pt, exact):
        assert torch.isfinite(o).all(), name
        err = (o.double() - e).abs().max().item() if o.numel() else 0.0
        err_pt = (p.double() - e).abs().max().item() if p.numel() else 0.0
        assert err <= factor * err_pt + 1e-5, f"{name}: error {err:.3g} > {factor} x PyTorch's {err_pt:.3g} + 1e-5"


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("masks", ["none", "causal", "all"])
def test_fp32_within_flash_attention_rule(seed, masks):
    args, kw = make_problem(seed, masks=masks, H=8, H_kv=2, D=64, n_segments=4, max_len=160)
    _check(args, kw, 2)


@pytest.mark.parametrize("q_scale", [1e1, 1e2, 1e3, 1e4])
@pytest.mark.parametrize("masks", ["none", "causal"])
@pytest.mark.parametrize("head_dim", [64, 72])
def test_fp32_sharp_softmax(q_scale, masks, head_dim):
    args, kw = make_problem(3, masks=masks, H=4, H_kv=2, D=head_dim, n_segments=3, max_len=150)
    _check((args[0] * q_scale, *args[1:]), kw, 3)


def test_nan_row_propagates():
    """A query row with a NaN gives NaN output and lse (not the 'saw nothing' pair 0 / -inf); the
    other rows are untouched."""
    args, kw = make_problem(5, masks="none", H=4, H_kv=2, D=64, lens_q=[7, 9], lens_k=[8, 5])
    q = args[0].clone()
    q[3, 1, 10] = float("nan")
    out, lse = lf.varlen_attention(q, *args[1:], **kw)
    want_out, want_lse = ref.varlen_attention(q, *args[1:], **kw)
    assert torch.isnan(out[3, 1]).all() and torch.isnan(lse[1, 3])
    keep = torch.ones(out.shape[:2], dtype=torch.bool)
    keep[3, 1] = False
    torch.testing.assert_close(out[keep], want_out[keep], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lse.T[keep], want_lse.T[keep], rtol=1e-5, atol=1e-5)


_SCRATCH = textwrap.dedent("""
    import resource, sys, torch
    import lavin_fast as lf
    torch.set_num_threads(int(sys.argv[1]))
    L, H, D = 4096, 2, 72
    q, k, v = (torch.randn(L, H if i == 0 else 1, D, requires_grad=True) for i in range(3))
    cu = torch.tensor([0, L], dtype=torch.int32)
    out, _ = lf.varlen_attention(q, k, v, cu, cu, L, L)
    g = torch.randn_like(out)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out.backward(g)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
""")


def test_backward_scratch_does_not_grow_with_threads():
    """The backward's per-thread buffers hold one query block, not a copy of the whole segment: a
    4k-token segment's backward on 8 threads peaks no higher than on 1 (it was 8 x 7 MiB higher)."""
    def growth_kib(threads):
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        r = subprocess.run([sys.executable, "-c", _SCRATCH, str(threads)], capture_output=True, text=True,
                           timeout=300, env=env)
        assert r.returncode == 0, r.stderr
        return int(r.stdout.split()[-1])
    one, eight = growth_kib(1), growth_kib(8)
    assert eight <= one + 12 * 1024, f"backward peak grew by {eight} KiB on 8 threads, {one} KiB on 1"
