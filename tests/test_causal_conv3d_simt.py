"""The CUDA implicit-GEMM forward of causal_conv3d under the SIMT emulator (bf16 / fp16), on CPU
tensors: three schedules with bit-identical results, against the float64 reference."""

import math

import pytest
import torch

from lavin_fast import reference as ref
from lavin_fast.conv import causal_conv3d
from tests.helpers import assert_close, f64, randn, run_on

HALF = [torch.bfloat16, torch.float16]


def _inputs(n, c, t, h, w, o, k, dtype):
    x = randn(n, c, t, h, w, dtype=dtype)
    weight = randn(o, c, *k, dtype=dtype, scale=(c * math.prod(k)) ** -0.5)
    return x, weight, randn(o, dtype=dtype)


# Kernel sizes 1 and 3 per dimension, strides 1 and 2, every temporal padding; K from 3 to 81 and O
# past one 64-channel tile (O = 70) in some; M past one 64-position tile everywhere.
CASES = [
    # (n, c, t, h, w, o, kernel, stride, temporal_pad)
    (1, 3, 5, 7, 9, 6, (3, 3, 3), (1, 1, 1), "replicate"),
    (2, 4, 3, 6, 5, 70, (3, 3, 3), (2, 2, 2), "zeros"),
    (1, 5, 4, 5, 7, 8, (3, 1, 1), (1, 1, 1), "cache"),
    (1, 3, 1, 9, 8, 4, (1, 3, 3), (1, 2, 1), "replicate"),
    (1, 16, 2, 5, 6, 16, (1, 1, 1), (1, 1, 1), "zeros"),
    (1, 3, 6, 5, 5, 5, (3, 3, 1), (2, 1, 2), "cache"),
]


@pytest.mark.parametrize("dtype", HALF, ids=str)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[6]}-s{c[7]}-{c[8]}")
def test_simt_forward_matches_reference(case, dtype):
    n, c, t, h, w, o, k, stride, mode = case
    x, weight, b = _inputs(n, c, t, h, w, o, k, dtype)
    cache = randn(n, c, k[0] - 1, h, w, dtype=dtype) if mode == "cache" else None
    pad = "replicate" if mode == "cache" else mode
    kw = dict(stride=stride, spatial_padding=(k[1] // 2, k[2] // 2), temporal_pad=pad, cache=cache)
    y = run_on("simt", lambda: causal_conv3d(x, weight, b, **kw))
    expected = ref.causal_conv3d(f64(x), f64(weight), f64(b), **{**kw, "cache": f64(cache)})
    assert_close(y, expected, dtype, f"simt {case}")


@pytest.mark.parametrize("dtype", HALF, ids=str)
def test_simt_channels_last_and_sliced_input(dtype):
    x, weight, b = _inputs(1, 8, 4, 5, 6, 8, (3, 3, 3), dtype)
    xc = x.contiguous(memory_format=torch.channels_last_3d)
    y = run_on("simt", lambda: causal_conv3d(xc, weight, b, spatial_padding=1))
    assert y.is_contiguous(memory_format=torch.channels_last_3d)
    assert_close(y, ref.causal_conv3d(f64(x), f64(weight), f64(b), spatial_padding=1), dtype)
    xs = randn(1, 8, 8, 5, 9, dtype=dtype)[:, :, ::2, :, 1:7]
    y = run_on("simt", lambda: causal_conv3d(xs, weight, None, spatial_padding=1))
    assert_close(y, ref.causal_conv3d(f64(xs), f64(weight), spatial_padding=1), dtype)


def test_simt_streaming_equals_one_pass():
    x, weight, b = _inputs(1, 4, 5, 5, 6, 4, (3, 3, 3), torch.bfloat16)

    def stream():
        ys, cache = [], None
        for part in torch.split(x, [1, 3, 1], dim=2):
            y, cache = causal_conv3d(part, weight, b, spatial_padding=1, cache=cache, return_cache=True)
            ys.append(y)
        return torch.cat(ys, dim=2)

    one = run_on("simt", lambda: causal_conv3d(x, weight, b, spatial_padding=1))
    # Every output element is the same dot product in the same order either way.
    assert torch.equal(run_on("simt", stream), one)


def test_simt_gradients_use_the_aten_backward():
    x, weight, b = _inputs(1, 3, 4, 5, 5, 4, (3, 3, 3), torch.bfloat16)
    leaves = [v.requires_grad_(True) for v in (x, weight, b)]
    got = run_on("simt", lambda: torch.autograd.grad(causal_conv3d(x, weight, b, spatial_padding=1).sum(), leaves))
    expected = torch.autograd.grad(causal_conv3d(x, weight, b, spatial_padding=1).sum(), leaves)
    for g, e in zip(got, expected):
        assert torch.equal(g, e)
