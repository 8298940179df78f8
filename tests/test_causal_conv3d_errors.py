"""Bad input to causal_conv3d: a clear error naming the argument, from Python and from the native op."""

import pytest
import torch

from lavin_fast.conv import causal_conv3d
from tests.helpers import randn

ops = torch.ops.lavin_fast


def _args():
    return randn(1, 3, 4, 5, 6), randn(2, 3, 3, 3, 3), randn(2)


@pytest.mark.parametrize("native", [False, True], ids=["python", "native"])
@pytest.mark.parametrize("case,error,match", [
    ("x_rank", ValueError, r"'x' must be 5-D \(N, C, T, H, W\)"),
    ("weight_rank", ValueError, r"'weight' must be 5-D"),
    ("kernel_too_large", ValueError, r"kernel sizes must be in \[1, 7\]"),
    ("cache_shape", ValueError, r"'cache' must have shape \(N, C, k_t - 1, H, W\) = \(1, 3, 2, 5, 6\)"),
    ("weight_dtype", TypeError, r"'weight' must have the dtype of 'x' \(float32\), got bfloat16"),
    ("cache_dtype", TypeError, r"'cache' must have the dtype of 'x' \(float32\), got float16"),
    ("x_dtype", TypeError, r"'x' must have dtype float32 or bfloat16 or float16 or float64, got int32"),
    ("temporal_pad", ValueError, r"'temporal_pad' must be \"replicate\" or \"zeros\""),
])
def test_bad_input(case, error, match, native):
    x, w, b = _args()
    cache, pad = None, "replicate"
    if case == "x_rank":
        x = x[0]
    elif case == "weight_rank":
        w = w[0]
    elif case == "kernel_too_large":
        w = randn(2, 3, 9, 3, 3)
    elif case == "cache_shape":
        cache = randn(1, 3, 1, 5, 6)
    elif case == "weight_dtype":
        w = w.bfloat16()
    elif case == "cache_dtype":
        cache = randn(1, 3, 2, 5, 6, dtype=torch.float16)
    elif case == "x_dtype":
        x = x.int()
    elif case == "temporal_pad":
        pad = "reflect"
    if native:
        with pytest.raises(error, match=match):
            ops.causal_conv3d(x, w, b, [1, 1, 1], [1, 1], pad, cache, False)
    else:
        with pytest.raises(error, match=match):
            causal_conv3d(x, w, b, spatial_padding=1, temporal_pad=pad, cache=cache)


@pytest.mark.parametrize("case,match", [
    ("channels", r"'weight' must have shape \(O, C, k_t, k_h, k_w\) with C = 3"),
    ("bias", r"'bias' must have shape \(O,\) = \(2,\), got \(3,\)"),
    ("stride", r"'stride' must be >= 1"),
    ("padding", r"'spatial_padding' must be >= 0"),
    ("frame_too_small", r"smaller than the kernel"),
    ("no_frames", r"at least one frame"),
])
def test_bad_sizes_native(case, match):
    x, w, b = _args()
    stride, padding = [1, 1, 1], [1, 1]
    if case == "channels":
        w = randn(2, 4, 3, 3, 3)
    elif case == "bias":
        b = randn(3)
    elif case == "stride":
        stride = [0, 1, 1]
    elif case == "padding":
        padding = [-1, 1]
    elif case == "frame_too_small":
        padding = [0, 0]
        x = randn(1, 3, 4, 2, 6)
    elif case == "no_frames":
        x = randn(1, 3, 0, 5, 6)
    with pytest.raises(ValueError, match=match):
        ops.causal_conv3d(x, w, b, stride, padding, "replicate", None, False)


def test_bad_stride_spelling():
    x, w, b = _args()
    with pytest.raises(ValueError, match=r"'stride' must be an int or 3 ints"):
        causal_conv3d(x, w, b, stride=(1, 2))
