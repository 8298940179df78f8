"""Every instruction-set variant of the CPU attention kernels (DEFAULT, AVX2, AVX512, chosen by
ATEN_CPU_CAPABILITY once per process, so each runs in a subprocess) matches the reference, forward
and backward, including head dims that are not a multiple of any vector width."""

import pytest

from tests.helpers import run_isa_variant

SCRIPT = r"""
import torch
from lavin_fast import _C
from lavin_fast.attention import varlen_attention
import lavin_fast.reference as ref
from tests.attention_cases import make_problem
from tests.helpers import assert_close, assert_grad_close, f64, randn
_C.testing.set_poison_outputs(True)
print(_C.cpu_isa())
for dtype in (torch.float32, torch.bfloat16):
    for D in (7, 72):
        args, kw = make_problem(D, n_segments=3, max_len=90, H=4, H_kv=2, D=D, masks="all", dtype=dtype)
        q, k, v, *rest = args
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        out, _ = varlen_attention(*leaves, *rest, **kw)
        refs = [f64(t).requires_grad_() for t in (q, k, v)]
        ref_out, _ = ref.varlen_attention(*refs, *rest, **kw)
        assert_close(out, ref_out, dtype, f"{dtype} {D}")
        g = randn(*out.shape, dtype=dtype)
        out.backward(g)
        ref_out.backward(f64(g))
        for a, b in zip(leaves, refs):
            assert_grad_close(a.grad, b.grad, dtype, f"{dtype} {D}")
print("ok")
"""


@pytest.mark.parametrize("isa", ["DEFAULT", "AVX2", "AVX512"])
def test_attention_isa_variant_matches_reference(isa):
    run_isa_variant(isa, SCRIPT)
