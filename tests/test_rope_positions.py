"""qk_norm_rope at large positions (long videos, big grids, anything up to the int32 limit): every
accepted position gives a true rotation, equal to the float64 reference within fp32 tolerance, forward
and backward, on every backend; int64 positions outside int32 are refused with a clear error."""

import pytest
import torch

from lavin_fast import reference as ref
from lavin_fast.rope import qk_norm_rope
from tests.helpers import assert_close, device_of, f64, host_backend, randn, run_on, with_backends

ops = torch.ops.lavin_fast

# The positions the issue names, and odd neighbours that fp32 cannot represent (2^24 + 1, ...).
LARGE = [0, 2**16, 2**20, 2**24, 2**24 + 1, 2**28, 2**28 + 3, 2**31 - 1, -(2**31), -(2**24 + 1)]


def _spread_positions(rows):
    """Every LARGE value on every axis, mixed across rows: too many distinct values for the CPU
    kernel's cos/sin table, so its on-the-fly path runs."""
    vals = torch.tensor(LARGE, dtype=torch.int64)
    idx = torch.stack([torch.arange(rows), torch.arange(rows) * 3 + 1, torch.arange(rows) * 7 + 2], -1)
    return vals[idx % len(LARGE)].to(torch.int32)


def _head_norms(y):
    return y.to(torch.float64).norm(dim=-1)


@with_backends("backend")
@pytest.mark.parametrize("interleaved", [False, True], ids=["half", "interleaved"])
def test_large_positions_match_reference_and_preserve_norms(backend, interleaved):
    rows, h, d = 20, 4, 72
    dev = device_of(backend)
    x = randn(rows, h * d)
    pos = _spread_positions(rows)
    y = run_on(backend, lambda: qk_norm_rope(x.to(dev), None, pos.to(dev), h, normalize=False,
                                             interleaved=interleaved)).cpu()
    expected = ref.qk_norm_rope(f64(x), None, pos, h, normalize=False, interleaved=interleaved)
    # A rotation keeps each head's norm (the reference's ratio is 1 to ~1e-16).
    torch.testing.assert_close(_head_norms(y), _head_norms(x.unflatten(-1, (h, d))), rtol=1e-5, atol=0)
    assert_close(y, expected, torch.float32, "large positions")


@with_backends("backend")
@pytest.mark.parametrize("p", LARGE)
def test_each_large_position_alone(backend, p):
    """One position value per call (on the CPU: the cos/sin table path), with a weight and RMSNorm."""
    dev = device_of(backend)
    x, w = randn(3, 8 * 72), randn(8 * 72, offset=1.0, scale=0.2)
    pos = torch.full((3, 3), p, dtype=torch.int32)
    pos[1, 1] = p - 1 if p > -(2**31) else p + 1
    y = run_on(backend, lambda: qk_norm_rope(x.to(dev), w.to(dev), pos.to(dev), 8)).cpu()
    assert_close(y, ref.qk_norm_rope(f64(x), f64(w), pos, 8), torch.float32, f"position {p}")


@with_backends("backend")
def test_backward_at_large_positions_is_the_transposed_rotation(backend):
    rows, h, d = 12, 2, 72
    dev = device_of(backend)
    x, g = randn(rows, h * d), randn(rows, h, d)
    pos = _spread_positions(rows)

    def grad():
        xd = x.to(dev, copy=True).requires_grad_()  # a fresh leaf per run (run_on repeats it under simt)
        qk_norm_rope(xd, None, pos.to(dev), h, normalize=False).backward(g.to(dev))
        return xd.grad

    gx = run_on(backend, grad).cpu()
    xr = f64(x).requires_grad_()
    ref.qk_norm_rope(xr, None, pos, h, normalize=False).backward(f64(g))
    assert_close(gx, xr.grad, torch.float32, "grad_x")


def _int64_positions(v):
    pos = torch.zeros(5, 3, dtype=torch.int64)
    pos[3, 1] = v
    return pos


@pytest.mark.parametrize("backend", ["cpu", "simt"])
@pytest.mark.parametrize("v", [2**31, -(2**31) - 1, 2**40], ids=["2^31", "-2^31-1", "2^40"])
def test_int64_positions_outside_int32_are_refused(backend, v):
    x = randn(5, 576)
    pos = _int64_positions(v)
    pattern = r"'positions' must hold values in \[-2147483648, 2147483647\].*got .*" + str(v)
    calls = [lambda: qk_norm_rope(x, None, pos, 8),
             lambda: ops.qk_norm_rope(x, None, pos, 8, 1e-6, [24, 24, 24], [1e4], False, True)]
    for call in calls:
        with host_backend(backend), pytest.raises((ValueError, RuntimeError), match=pattern):
            call()


def test_int64_positions_at_the_int32_limits_are_accepted():
    x = randn(5, 576)
    pos = _int64_positions(2**31 - 1)
    pos[4, 2] = -(2**31)
    assert_close(qk_norm_rope(x, None, pos, 8), ref.qk_norm_rope(f64(x), None, pos, 8), torch.float32, "limits")
