"""Every instruction-set variant of the CPU kernels (DEFAULT, AVX2, AVX512; chosen like ATen's, by
ATEN_CPU_CAPABILITY, once per process) passes its op's checks in tests/isa_checks.py, each in a
subprocess of its own."""

import pytest

from tests import isa_checks
from tests.helpers import run_isa_variant

OPS = ["attention", "causal_conv3d_fp32", "rms_norm_modulate", "qk_norm_rope"]


@pytest.mark.parametrize("isa", ["DEFAULT", "AVX2", "AVX512"])
@pytest.mark.parametrize("op", OPS)
def test_cpu_isa_variant_matches_reference(op, isa):
    assert callable(getattr(isa_checks, op))
    run_isa_variant(isa, op)
