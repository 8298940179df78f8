"""Shared test helpers: tolerances, packed layouts, comparisons against the float64 reference."""

import torch

DTYPES = [torch.float32, torch.bfloat16, torch.float16]

# Error of our result vs the float64 reference of the same (rounded) inputs. Outputs are rounded to
# the dtype once (fp32 accumulation inside), so bf16 carries ~2^-9 relative error per element.
TOL = {
    torch.float32: dict(rtol=1e-5, atol=1e-5),
    torch.bfloat16: dict(rtol=1e-2, atol=1e-2),
    torch.float16: dict(rtol=2e-3, atol=2e-3),
}
# Gradients sum over rows (weight, scale, gate): compare relative to the gradient's own magnitude.
GRAD_TOL = {torch.float32: 2e-5, torch.bfloat16: 2e-2, torch.float16: 4e-3}


def cu_seqlens(lengths, device="cpu"):
    out = torch.zeros(len(lengths) + 1, dtype=torch.int32, device=device)
    out[1:] = torch.cumsum(torch.tensor(lengths, dtype=torch.int32), 0)
    return out


def randn(*shape, dtype=torch.float32, scale=1.0, offset=0.0):
    """Random values away from zero (never all zeros), rounded to dtype."""
    return (torch.randn(*shape, dtype=torch.float64) * scale + offset).to(dtype)


def f64(t):
    return None if t is None else t.detach().to(torch.float64)


def assert_close(got, ref, dtype, what=""):
    assert got.dtype == dtype, f"{what}: dtype {got.dtype} != {dtype}"
    assert torch.isfinite(got).all(), f"{what}: non-finite values (an unwritten, poisoned element?)"
    torch.testing.assert_close(got.to(torch.float64), ref.to(torch.float64), **TOL[dtype], msg=what)


def assert_grad_close(got, ref, dtype, what="", baseline=None):
    """Max error within GRAD_TOL of the gradient's magnitude, or (where the math cancels, e.g. D = 1,
    where grad_x ~ eps) within 2x the error of plain PyTorch autograd in the same dtype (`baseline`),
    the rule FlashAttention's tests use."""
    assert got is not None, f"{what}: no gradient"
    assert torch.isfinite(got).all(), f"{what}: non-finite gradient"
    err = (got.to(torch.float64) - ref).abs().max().item()
    bound = GRAD_TOL[dtype] * max(ref.abs().max().item(), 1e-3)
    if baseline is not None:
        bound = max(bound, 2 * (baseline.to(torch.float64) - ref).abs().max().item())
    assert err <= bound, f"{what}: max abs error {err:.3g} > {bound:.3g}"
