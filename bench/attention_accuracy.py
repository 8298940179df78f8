"""fp32 varlen attention against FlashAttention's accuracy rule, over many random packed problems and
with q scaled up (sharp softmax): for out, dq, dk and dv, the max error against the float64 reference
next to plain PyTorch's fp32 error (the reference evaluated in fp32: dense masked softmax). The rule
(FlashAttention's tests): ours <= 2 x PyTorch's + 1e-5; tests/test_attention_accuracy.py asserts it on a
smaller set.

    python -m bench.attention_accuracy [--seeds 40]
"""

import argparse

import torch

import lavin_fast as lf
from lavin_fast.reference import attention as ref
from tests.attention_cases import make_problem

NAMES = ("out", "dq", "dk", "dv")


def _run(fn, args, kw, grad_out, dtype):
    q, k, v = (a.detach().to(dtype).requires_grad_() for a in args[:3])
    out, _ = fn(q, k, v, *args[3:], **kw)
    out.backward(grad_out.to(dtype))
    return out.detach(), q.grad, k.grad, v.grad


def errors(args, kw):
    """([ours], [PyTorch fp32]) max abs errors against float64, per output."""
    grad_out = torch.randn(args[0].shape, dtype=torch.float64)
    exact = _run(ref.varlen_attention, args, kw, grad_out, torch.float64)
    pt = _run(ref.varlen_attention, args, kw, grad_out, torch.float32)
    ours = _run(lf.varlen_attention, args, kw, grad_out, torch.float32)
    err = lambda a, e: (a.double() - e).abs().max().item() if a.numel() else 0.0  # noqa: E731
    return [err(o, e) for o, e in zip(ours, exact)], [err(p, e) for p, e in zip(pt, exact)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=40)
    a = ap.parse_args()
    torch.manual_seed(0)
    fails, worst = 0, 0.0
    for seed in range(a.seeds):
        for masks in ("none", "causal", "all"):
            args, kw = make_problem(seed, masks=masks, H=8, H_kv=2, D=64, n_segments=4, max_len=200)
            ours, pt = errors(args, kw)
            fails += any(o > 2 * p + 1e-5 for o, p in zip(ours, pt))
            worst = max(worst, *((o - 1e-5) / p for o, p in zip(ours, pt) if p > 0))
    print(f"random packed fp32 problems (H 8/2, D 64, 4 segments <= 200): {fails} of {3 * a.seeds} exceed "
          f"2 x PyTorch's error + 1e-5; worst (ours - 1e-5) / PyTorch = {worst:.2f}")
    print("q scaled (causal, seed 0): error ours / PyTorch fp32 for " + ", ".join(NAMES))
    for scale in (1e1, 1e2, 1e3, 1e4, 1e5):
        args, kw = make_problem(0, masks="causal", H=8, H_kv=2, D=64, n_segments=4, max_len=200)
        ours, pt = errors((args[0] * scale, *args[1:]), kw)
        print(f"  x {scale:g}: " + ", ".join(f"{o:.3g} / {p:.3g}" for o, p in zip(ours, pt)))


if __name__ == "__main__":
    main()
