"""Bad input gives a clear error naming the argument and the expectation, from the public Python
functions and from the native ops (torch.ops.lavin_fast.*) alike."""

import pytest
import torch

import lavin_fast
from tests.helpers import cu_seqlens, host_backend, randn

ops = torch.ops.lavin_fast
ERRORS = (ValueError, TypeError, RuntimeError)

X = randn(10, 72)
CU = cu_seqlens([4, 6])
S = randn(2, 72)


def bad_cu(values):
    return torch.tensor(values, dtype=torch.int32)


# (name, python call, native call, pattern the message must contain)
CASES = [
    ("x float64",
     lambda: lavin_fast.rms_norm(X.double()), lambda: ops.rms_norm(X.double(), None, 1e-6),
     r"'x' must have dtype float32 or bfloat16 or float16, got float64"),
    ("x integer",
     lambda: lavin_fast.rms_norm_modulate(X.long(), S, cu_seqlens=CU),
     lambda: ops.rms_norm_modulate(X.long(), S, None, CU, 1e-6), r"'x' must have dtype"),
    ("weight shape",
     lambda: lavin_fast.rms_norm(X, randn(71)), lambda: ops.rms_norm(X, randn(71), 1e-6),
     r"'weight' must have shape \(D,\).*72.*71"),
    ("weight int",
     lambda: lavin_fast.rms_norm(X, torch.ones(72, dtype=torch.int32)),
     lambda: ops.rms_norm(X, torch.ones(72, dtype=torch.int32), 1e-6), r"'weight' must have dtype"),
    ("D = 0",
     lambda: lavin_fast.rms_norm(randn(3, 0)), lambda: ops.rms_norm(randn(3, 0), None, 1e-6),
     r"'x' must have a last dimension of size >= 1"),
    ("negative eps", lambda: lavin_fast.rms_norm(X, eps=-1.0), lambda: ops.rms_norm(X, None, -1.0),
     r"'eps' must be >= 0"),
    ("cu_seqlens int64",
     lambda: lavin_fast.rms_norm_modulate(X, S, cu_seqlens=CU.long()),
     lambda: ops.rms_norm_modulate(X, S, None, CU.long(), 1e-6), r"'cu_seqlens' must have dtype int32, got int64"),
    ("cu_seqlens 2-D",
     lambda: lavin_fast.rms_norm_modulate(X, S, cu_seqlens=CU.reshape(1, 3)),
     lambda: ops.rms_norm_modulate(X, S, None, CU.reshape(1, 3), 1e-6), r"'cu_seqlens' must be 1-D"),
    ("cu_seqlens not from 0",
     lambda: lavin_fast.rms_norm_modulate(X, S, cu_seqlens=bad_cu([1, 4, 10])),
     lambda: ops.rms_norm_modulate(X, S, None, bad_cu([1, 4, 10]), 1e-6), r"'cu_seqlens' must start at 0"),
    ("cu_seqlens decreasing",
     lambda: lavin_fast.rms_norm_modulate(X, S, cu_seqlens=bad_cu([0, 11, 10])),
     lambda: ops.rms_norm_modulate(X, S, None, bad_cu([0, 11, 10]), 1e-6), r"'cu_seqlens' must be non-decreasing"),
    ("cu_seqlens not ending at T",
     lambda: lavin_fast.rms_norm_modulate(X, S, cu_seqlens=bad_cu([0, 4, 9])),
     lambda: ops.rms_norm_modulate(X, S, None, bad_cu([0, 4, 9]), 1e-6),
     r"'cu_seqlens' must end at the number of tokens 10, got cu_seqlens\[-1\] = 9"),
    ("scale rows != segments",
     lambda: lavin_fast.rms_norm_modulate(X, randn(3, 72), cu_seqlens=CU),
     lambda: ops.rms_norm_modulate(X, randn(3, 72), None, CU, 1e-6),
     r"'scale' must have shape \(S, D\).*\(2, 72\), got \(3, 72\)"),
    ("shift width",
     lambda: lavin_fast.rms_norm_modulate(X, S, randn(2, 73), cu_seqlens=CU),
     lambda: ops.rms_norm_modulate(X, S, randn(2, 73), CU, 1e-6), r"'shift' must have shape"),
    ("packed x must be 2-D",
     lambda: lavin_fast.rms_norm_modulate(randn(1, 10, 72), S, cu_seqlens=CU),
     lambda: ops.rms_norm_modulate(randn(1, 10, 72), S, None, CU, 1e-6), r"'x' must be 2-D \(T, D\)"),
    ("padded x must be 3-D",
     lambda: lavin_fast.rms_norm_modulate(X, S), lambda: ops.rms_norm_modulate(X, S, None, None, 1e-6),
     r"'x' must be 3-D \(B, L, D\)"),
    ("padded scale rows != batch",
     lambda: lavin_fast.rms_norm_modulate(randn(3, 4, 72), S),
     lambda: ops.rms_norm_modulate(randn(3, 4, 72), S, None, None, 1e-6),
     r"'scale' must have shape \(B, D\) = \(3, 72\)"),
    ("gate_act",
     lambda: lavin_fast.gated_rms_residual(X, X, S, gate_act="sigmoid", cu_seqlens=CU),
     lambda: ops.gated_rms_residual(X, X, S, CU, 1e-6, "sigmoid"), r"'gate_act' must be \"tanh\" or \"none\""),
    ("residual shape",
     lambda: lavin_fast.gated_rms_residual(randn(9, 72), X, S, cu_seqlens=CU),
     lambda: ops.gated_rms_residual(randn(9, 72), X, S, CU, 1e-6, "tanh"), r"shape"),
    ("gate segments",
     lambda: lavin_fast.gated_rms_residual(X, X, randn(1, 72), cu_seqlens=CU),
     lambda: ops.gated_rms_residual(X, X, randn(1, 72), CU, 1e-6, "tanh"), r"'gate' must have shape"),
]


@pytest.mark.parametrize("backend", ["cpu", "simt"])
@pytest.mark.parametrize("layer", ["python", "native"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_a_clear_error(case, layer, backend):
    _, python_call, native_call, pattern = case
    with host_backend(backend), pytest.raises(ERRORS, match=pattern):
        (python_call if layer == "python" else native_call)()


def test_device_mismatch():
    # The native check needs two real devices (tested where a GPU exists); the meta device reaches
    # the Python one.
    with pytest.raises(ERRORS, match=r"'scale' must be on cpu \(the device of 'x'\), got meta"):
        lavin_fast.rms_norm_modulate(X, S.to("meta"), cu_seqlens=CU)
    with pytest.raises(ERRORS, match=r"'cu_seqlens' must be on cpu"):
        lavin_fast.rms_norm_modulate(X, S, cu_seqlens=CU.to("meta"))


def test_backward_checks_rstd():
    g = randn(10, 72)
    with pytest.raises(ERRORS, match=r"'rstd' must have shape"):
        ops.rms_norm_backward(g, X, None, torch.ones(9), False)
    with pytest.raises(ERRORS, match=r"'rstd' must have dtype"):
        ops.rms_norm_backward(g, X, None, torch.ones(10, dtype=torch.float64), False)
    with pytest.raises(ERRORS, match=r"'grad_y' must have the shape of 'x'"):
        ops.rms_norm_backward(randn(10, 71), X, None, torch.ones(10), False)
