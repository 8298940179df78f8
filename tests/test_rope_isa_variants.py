"""Every instruction-set variant of the qk_norm_rope CPU kernels (DEFAULT, AVX2, AVX512, chosen by
ATEN_CPU_CAPABILITY once per process, hence subprocesses) gives the reference's results: both pairings
(the interleaved pair swap is ISA-specific code), section sizes that are and are not multiples of the
vector width, both cos/sin sources, positions over the whole int32 range."""

import pytest

from lavin_fast import _C
from tests.helpers import run_isa_variant

SCRIPT = r"""
import torch, lavin_fast
from lavin_fast import _C, reference as ref
from tests.helpers import assert_close, assert_grad_close, f64, randn
_C.testing.set_poison_outputs(True)
torch.manual_seed(0)
print(_C.cpu_isa())
for dtype in (torch.float32, torch.bfloat16):
    for heads, d, sections, inter in ((8, 72, None, False), (8, 72, None, True), (2, 128, (16, 56, 56), False),
                                     (3, 64, (0, 32, 32), True)):
        for low, high in ((0, 30), (0, 300000), (-2**31, 2**31)):  # table, direct, any int32
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
print("ok")
"""


@pytest.mark.parametrize("isa", ["DEFAULT", "AVX2", "AVX512"])
def test_rope_isa_variant_matches_reference(isa):
    if isa == _C.cpu_isa():
        pytest.skip("the variant this process runs: tests/test_rope.py covers it")
    run_isa_variant(isa, SCRIPT)
