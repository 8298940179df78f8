"""lavin_fast.linear vs F.linear (eager) vs torch.compile of F.linear, fp32, forward and
forward+backward, at the J-DiT's projection shapes: the small bench configuration's MLP and K/V
projections (3328 packed CFG tokens, hidden 576) and the released q projection (hidden 2304).

On the CPU F.linear and torch.compile both end in MKL's sgemm, which runs its AVX2 code on AMD
processors; lavin_fast.linear goes to oneDNN's inner product. GFLOP/s = 2*M*N*K (x3 for fwd+bwd).

    python -m pytest bench/bench_linear.py --benchmark-only
"""

import functools

import pytest
import torch
import torch.nn.functional as F

from lavin_fast.linear import linear

CASES = {  # name: (rows, in_features, out_features)
    "small mlp up": (3328, 576, 1536),
    "small mlp down": (3328, 1536, 576),
    "small k/v": (3328, 576, 144),
    "released q": (2560, 2304, 2304),
}
IMPLS = ("lavin_fast", "eager", "compile")


@functools.cache
def _compiled():
    return torch.compile(F.linear, dynamic=False)


def _fn(impl):
    return {"lavin_fast": linear, "eager": F.linear, "compile": _compiled()}[impl]


@pytest.mark.parametrize("passes", ["fwd", "fwd+bwd"])
@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", list(CASES))
def test_linear(benchmark, harness, device, quick, case, impl, passes):
    if quick and case == "released q":
        pytest.skip("--quick")
    m, k, n = CASES[case]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(m, k, generator=g).to(device).requires_grad_(passes != "fwd")
    w = (torch.randn(n, k, generator=g) / k ** 0.5).to(device).requires_grad_(passes != "fwd")
    b = torch.randn(n, generator=g).to(device).requires_grad_(passes != "fwd")
    gy = torch.randn(m, n, generator=g).to(device)
    op = _fn(impl)

    def fwd():
        with torch.no_grad():
            op(x, w, b)

    def fwd_bwd():
        torch.autograd.grad(op(x, w, b), (x, w, b), gy)

    harness.run(benchmark, fwd if passes == "fwd" else fwd_bwd, group=f"linear {case} {passes}",
                bytes_moved=4 * (m * k + n * k + m * n), elements=m * n, kind="linear", case=case,
                passes=passes, impl=impl, dtype="fp32", flops=2 * m * n * k * (1 if passes == "fwd" else 3))
