"""Every instruction-set variant of the CPU kernels (DEFAULT, AVX2, AVX512; chosen like ATen's, by
ATEN_CPU_CAPABILITY) gives the reference's results. Each runs in a subprocess: the choice is made
once per process."""

import pytest

from tests.helpers import run_isa_variant

SCRIPT = r"""
import torch, lavin_fast
from lavin_fast import _C, reference as ref
from tests.helpers import assert_close, assert_grad_close, cu_seqlens, f64, randn
_C.testing.set_poison_outputs(True)
torch.manual_seed(0)
print(_C.cpu_isa())
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
        y.backward(g); yr.backward(f64(g))
        base = [t.detach().clone().requires_grad_(True) for t in (x, s, b)]
        ref.rms_norm_modulate(*base, cu_seqlens=cu).backward(g)
        for t, tr, tb in zip((x, s, b), (xr, sr, br), base):
            assert_grad_close(t.grad, tr.grad, dtype, f"{dtype} {dim}", baseline=tb.grad)
print("ok")
"""


@pytest.mark.parametrize("isa", ["DEFAULT", "AVX2", "AVX512"])
def test_isa_variant_matches_reference(isa):
    run_isa_variant(isa, SCRIPT)
