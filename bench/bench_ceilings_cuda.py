"""The GPU's two ceilings measured in the same run as the op benchmarks (GPU only): a bf16 matrix product
through cuBLAS (8192^3, random data: zeros run faster) and a device-to-device copy_ of 1 GiB (bytes read
plus bytes written). The report divides every op by the datasheet peak; these rows say how much of that
peak this card reaches at all, with the clocks it has now."""

import pytest
import torch

MATMUL_N = 8192
COPY_BYTES = 1 << 30


@pytest.fixture(autouse=True)
def _gpu_only(device):
    if device.type != "cuda":
        pytest.skip("GPU suite (--device cuda)")


def test_matmul_bf16(benchmark, harness, device):
    n = MATMUL_N
    g = torch.Generator(device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16, generator=g)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16, generator=g)
    c = torch.empty(n, n, device=device, dtype=torch.bfloat16)
    harness.run(benchmark, lambda: torch.mm(a, b, out=c), group="ceiling matmul", bytes_moved=3 * 2 * n * n,
                elements=n * n, kind="ceiling", case=f"matmul {n}^3", impl="torch.mm (cuBLAS)", dtype="bf16",
                passes="fwd", flops=2 * n ** 3)


def test_copy(benchmark, harness, device):
    x = torch.randn(COPY_BYTES // 2, device=device, dtype=torch.bfloat16,
                    generator=torch.Generator(device).manual_seed(0))
    y = torch.empty_like(x)
    harness.run(benchmark, lambda: y.copy_(x), group="ceiling copy", bytes_moved=2 * COPY_BYTES,
                elements=x.numel(), kind="ceiling", case="copy_ 1 GiB", impl="copy_", dtype="bf16", passes="fwd")
