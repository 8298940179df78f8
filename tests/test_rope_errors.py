"""Bad input to qk_norm_rope gives a clear error naming the argument, from the Python function and from
the native op alike, on the CPU and simt backends; nothing is written."""

import pytest
import torch

from lavin_fast.rope import qk_norm_rope
from tests.helpers import host_backend, randn

ops = torch.ops.lavin_fast
ERRORS = (ValueError, TypeError, RuntimeError)

X = randn(5, 576)
W = randn(576)
POS = torch.zeros(5, 3, dtype=torch.int32)
SEC = [24, 24, 24]


def native(x=X, w=W, pos=POS, heads=8, eps=1e-6, sections=SEC, bases=(10000.0,)):
    return lambda: ops.qk_norm_rope(x, w, pos, heads, eps, list(sections), list(bases), False, True)


def python(x=X, w=W, pos=POS, heads=8, eps=1e-6, sections=None, bases=10000.0):
    return lambda: qk_norm_rope(x, w, pos, heads, eps=eps, sections=sections, bases=bases)


CASES = [
    ("positions float", dict(pos=POS.float()), r"'positions' must have dtype int32 or int64, got float32"),
    ("positions (T, 2)", dict(pos=POS[:, :2]), r"'positions' must have shape .*\(5, 3\).*got \(5, 2\)"),
    ("positions rows", dict(pos=POS[:4]), r"'positions' must have shape"),
    ("heads do not divide", dict(heads=7), r"'num_heads' \(7\) must divide x.shape\[-1\] = 576"),
    ("odd head_dim", dict(x=randn(5, 18), w=None, heads=2), r"head_dim .* = 9 must be even"),
    ("odd section", dict(sections=(25, 23, 24)), r"'sections' must hold even sizes >= 0, got sections\[0\] = 25"),
    ("sections sum", dict(sections=(24, 24, 22)), r"'sections' must sum to head_dim = 72"),
    ("no default split", dict(x=randn(5, 512), w=None, heads=8, sections=None),
     r"head_dim = 64 is not a multiple of 6"),
    ("weight shape", dict(w=randn(72)), r"'weight' must have shape \(W,\).*576"),
    ("weight dtype", dict(w=W.double()), r"'weight' must have"),
    ("x float64", dict(x=X.double(), w=None), r"'x' must have dtype float32 or bfloat16 or float16, got float64"),
    ("bad base", dict(bases=(0.0,)), r"'bases' must"),
    ("negative eps", dict(eps=-1.0), r"'eps' must be >= 0"),
]


@pytest.mark.parametrize("backend", ["cpu", "simt"])
@pytest.mark.parametrize("name,kw,pattern", CASES, ids=[c[0] for c in CASES])
def test_errors(name, kw, pattern, backend):
    for make in (python, native):
        args = dict(kw)
        if make is native and args.get("sections", SEC) is None:
            args["sections"] = []
        with host_backend(backend), pytest.raises(ERRORS, match=pattern):
            make(**args)()


def test_width_limit_of_the_cuda_kernels_under_simt():
    x = randn(2, 4104)  # > 4096
    with host_backend("simt"), pytest.raises(ValueError, match=r"x.shape\[-1\] <= 4096"):
        qk_norm_rope(x, None, torch.zeros(2, 3, dtype=torch.int32), 57)


def test_backward_errors():
    rstd = torch.ones(5)
    with pytest.raises(ERRORS, match=r"'rstd' must have shape"):
        ops.qk_norm_rope_backward(X, X, W, POS, rstd[:4], 8, SEC, [1e4], False, True, True)
    with pytest.raises(ERRORS, match=r"'grad_y' must have the dtype"):
        ops.qk_norm_rope_backward(X.half(), X, W, POS, rstd, 8, SEC, [1e4], False, True, True)
    with pytest.raises(ERRORS, match=r"weight_requires_grad=True needs a 'weight'"):
        ops.qk_norm_rope_backward(X, X, None, POS, rstd, 8, SEC, [1e4], False, True, True)
