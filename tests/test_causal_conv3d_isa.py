"""causal_conv3d's fp32 CPU path converts NCDHW frames to channels-last and back with the vector
transpose (common/transpose_cpu.h), which has a variant per instruction set: each variant (chosen
by ATEN_CPU_CAPABILITY once per process, so each runs in a subprocess) against the float64
reference, with channel counts and frame sizes that are and are not multiples of the 8- and 16-wide
blocks, a cache, and channels-last input."""

import pytest

from tests.helpers import run_isa_variant

SCRIPT = r"""
import torch
from lavin_fast import _C
from lavin_fast.conv import causal_conv3d
import lavin_fast.reference as ref
from tests.helpers import assert_close, f64, randn
_C.testing.set_poison_outputs(True)
print(_C.cpu_isa())
for n, c, o, h, w in ((1, 37, 21, 9, 11), (2, 32, 16, 8, 8), (1, 16, 48, 4, 12)):
    x = randn(n, c, 5, h, w)
    wt, b = randn(o, c, 3, 3, 3, scale=(27 * c) ** -0.5), randn(o)
    cache = randn(n, c, 2, h, w)
    for xi in (x, x.contiguous(memory_format=torch.channels_last_3d)):
        for kw in ({}, {"cache": cache}, {"stride": (2, 1, 1)}):
            got = causal_conv3d(xi, wt, b, spatial_padding=1, **kw)
            exp = ref.causal_conv3d(f64(x), f64(wt), f64(b), spatial_padding=1,
                                    **{k: f64(v) if torch.is_tensor(v) else v for k, v in kw.items()})
            assert_close(got, exp, torch.float32, f"n={n} c={c} o={o} {h}x{w} {sorted(kw)}")
print("ok")
"""


@pytest.mark.parametrize("isa", ["DEFAULT", "AVX2", "AVX512"])
def test_causal_conv3d_isa_variant_matches_reference(isa):
    run_isa_variant(isa, SCRIPT)
