"""causal_conv3d against the float64 reference (F.pad + conv3d): every temporal padding, kernel,
stride, odd sizes, T = 1 and T < k_t, gradients, caches and streaming, channels-last input."""

import itertools
import math

import pytest
import torch

import lavin_fast
from lavin_fast import reference as ref
from lavin_fast.conv import CausalConv3d, causal_conv3d
from tests.helpers import DTYPES, assert_close, assert_grad_close, f64, randn

KERNELS = [(3, 3, 3), (1, 1, 1), (3, 1, 1), (1, 3, 3), (2, 3, 3), (4, 1, 3)]
STRIDES = [(1, 1, 1), (2, 2, 2), (2, 1, 1), (1, 2, 2)]
FRAMES = [1, 2, 5]


def _inputs(n, c, t, h, w, o, k, dtype=torch.float32, bias=True):
    fan_in = c * math.prod(k)
    x = randn(n, c, t, h, w, dtype=dtype)
    weight = randn(o, c, *k, dtype=dtype, scale=fan_in ** -0.5)
    b = randn(o, dtype=dtype) if bias else None
    return x, weight, b


def _pad(k):
    return (k[1] // 2, k[2] // 2)


def _ref(x, weight, bias, **kw):
    return ref.causal_conv3d(f64(x), f64(weight), f64(bias), **{k: (f64(v) if isinstance(v, torch.Tensor) else v)
                                                                  for k, v in kw.items()})


@pytest.mark.parametrize("temporal_pad", ["replicate", "zeros"])
@pytest.mark.parametrize("kernel,stride,t", list(itertools.product(KERNELS, STRIDES, FRAMES)),
                         ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else str(v))
def test_forward_every_kernel_stride_and_length(kernel, stride, t, temporal_pad):
    x, w, b = _inputs(2, 3, t, 7, 6, 5, kernel)
    y = causal_conv3d(x, w, b, stride=stride, spatial_padding=_pad(kernel), temporal_pad=temporal_pad)
    expected = _ref(x, w, b, stride=stride, spatial_padding=_pad(kernel), temporal_pad=temporal_pad)
    assert y.shape == expected.shape == (2, 5, (t - 1) // stride[0] + 1, *expected.shape[3:])
    assert_close(y, expected, torch.float32, f"k={kernel} s={stride} T={t}")


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("temporal_pad", ["replicate", "zeros", "cache"])
def test_forward_dtypes_odd_sizes(dtype, temporal_pad):
    x, w, b = _inputs(1, 5, 7, 9, 11, 7, (3, 3, 3), dtype)
    cache = randn(1, 5, 2, 9, 11, dtype=dtype) if temporal_pad == "cache" else None
    mode = "replicate" if cache is not None else temporal_pad
    y, new_cache = causal_conv3d(x, w, b, spatial_padding=1, temporal_pad=mode, cache=cache, return_cache=True)
    ey, ec = _ref(x, w, b, spatial_padding=1, temporal_pad=mode, cache=cache, return_cache=True)
    assert_close(y, ey, dtype, "y")
    assert torch.equal(new_cache, ec.to(dtype)), "the new cache is x's last k_t - 1 frames"


def test_released_vae_shape_128_channels():
    x, w, b = _inputs(1, 128, 3, 10, 12, 128, (3, 3, 3))
    assert_close(causal_conv3d(x, w, b, spatial_padding=1), _ref(x, w, b, spatial_padding=1), torch.float32)


@pytest.mark.parametrize("t", [1, 2, 5])
def test_cache_shorter_clip_than_kernel(t):
    # T < k_t - 1: the new cache mixes old cache frames and x's frames.
    x, w, b = _inputs(1, 3, t, 5, 4, 2, (4, 3, 3))
    cache = randn(1, 3, 3, 5, 4)
    y, c = causal_conv3d(x, w, b, spatial_padding=1, cache=cache, return_cache=True)
    ey, ec = _ref(x, w, b, spatial_padding=1, cache=cache, return_cache=True)
    assert_close(y, ey, torch.float32)
    torch.testing.assert_close(c.double(), ec)


@pytest.mark.parametrize("temporal_pad", ["replicate", "zeros", "cache"])
@pytest.mark.parametrize("kernel,stride,t", [((3, 3, 3), (1, 1, 1), 5), ((3, 3, 3), (2, 2, 2), 6),
                                             ((3, 3, 3), (1, 1, 1), 1), ((2, 1, 3), (1, 1, 2), 2),
                                             ((1, 1, 1), (1, 1, 1), 3), ((4, 1, 3), (2, 1, 1), 7)])
def test_gradients(kernel, stride, t, temporal_pad):
    x, w, b = _inputs(2, 3, t, 6, 5, 4, kernel, torch.float64)
    cache = randn(2, 3, kernel[0] - 1, 6, 5, dtype=torch.float64) if temporal_pad == "cache" else None
    mode = "zeros" if temporal_pad == "zeros" else "replicate"
    leaves = [v.requires_grad_(True) for v in (x, w, b) + ((cache,) if cache is not None else ())]
    kw = dict(stride=stride, spatial_padding=_pad(kernel), temporal_pad=mode, cache=cache, return_cache=True)
    gy = randn(2, 4, (t - 1) // stride[0] + 1, *(((6, 5)[i] + 2 * _pad(kernel)[i] - kernel[i + 1]) // stride[i + 1] + 1
                                                   for i in range(2)), dtype=torch.float64)
    gc = randn(2, 3, kernel[0] - 1, 6, 5, dtype=torch.float64)

    def loss(fn):
        y, c = fn(x, w, b, **kw)
        return (y * gy).sum() + (c * gc).sum()

    got = torch.autograd.grad(loss(causal_conv3d), leaves)
    # k_t = 1: the reference never reads the (empty) cache.
    expected = torch.autograd.grad(loss(ref.causal_conv3d), leaves, allow_unused=True)
    for name, g, e, v in zip(["x", "weight", "bias", "cache"], got, expected, leaves):
        torch.testing.assert_close(g, torch.zeros_like(v) if e is None else e, msg=name)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_gradients_half(dtype):
    x, w, b = _inputs(1, 4, 5, 6, 7, 6, (3, 3, 3), dtype)
    leaves = [v.requires_grad_(True) for v in (x, w, b)]
    gy = randn(1, 6, 5, 6, 7, dtype=dtype)
    got = torch.autograd.grad((causal_conv3d(x, w, b, spatial_padding=1) * gy).sum(), leaves)
    r = [f64(v).requires_grad_(True) for v in leaves]
    expected = torch.autograd.grad((ref.causal_conv3d(*r, spatial_padding=1) * f64(gy)).sum(), r)
    for name, g, e in zip(["x", "weight", "bias"], got, expected):
        assert g.dtype == dtype
        assert_grad_close(g, e, dtype, name)


def _stream(x, w, b, chunks, **kw):
    ys, cache = [], None
    for part in torch.split(x, chunks, dim=2):
        y, cache = causal_conv3d(part, w, b, cache=cache, return_cache=True, **kw)
        ys.append(y)
    return torch.cat(ys, dim=2), cache


@pytest.mark.parametrize("kernel", [(3, 3, 3), (4, 1, 1), (1, 3, 3)])
@pytest.mark.parametrize("chunks", [[1] * 9, [2, 2, 2, 2, 1], [4, 1, 3, 1], [9]], ids=str)
@pytest.mark.parametrize("temporal_pad", ["replicate", "zeros"])
def test_streaming_equals_one_pass(kernel, chunks, temporal_pad):
    x, w, b = _inputs(1, 3, 9, 6, 5, 4, kernel)
    kw = dict(spatial_padding=_pad(kernel), temporal_pad=temporal_pad)
    one, cache_one = causal_conv3d(x, w, b, return_cache=True, **kw)
    streamed, cache = _stream(x, w, b, chunks, **kw)
    torch.testing.assert_close(streamed, one, rtol=1e-5, atol=1e-5)
    assert torch.equal(cache, cache_one)


def test_streaming_temporal_stride_two():
    # Each call starts its output grid at its first frame: chunks of even length (all but the last)
    # equal one pass; an odd chunk shifts the grid, and the result is that of the per-chunk definition.
    x, w, b = _inputs(1, 3, 9, 6, 5, 4, (3, 3, 3))
    kw = dict(stride=(2, 1, 1), spatial_padding=1)
    one = causal_conv3d(x, w, b, **kw)
    streamed, _ = _stream(x, w, b, [2, 4, 3], **kw)
    torch.testing.assert_close(streamed, one, rtol=1e-5, atol=1e-5)
    y1, c = causal_conv3d(x[:, :, :3], w, b, return_cache=True, **kw)
    y2 = causal_conv3d(x[:, :, 3:], w, b, cache=c, **kw)
    assert not torch.allclose(torch.cat([y1, y2], dim=2), one), "an odd chunk shifts the output grid"
    padded = torch.cat([c, x[:, :, 3:]], dim=2)
    torch.testing.assert_close(y2.double(), torch.nn.functional.conv3d(f64(padded), f64(w), f64(b), stride=(2, 1, 1),
                                                                       padding=(0, 1, 1)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("n", [1, 2])
def test_channels_last_input(dtype, n):
    x, w, b = _inputs(n, 8, 6, 5, 7, 8, (3, 3, 3), dtype)
    xc = x.contiguous(memory_format=torch.channels_last_3d)
    y = causal_conv3d(xc, w, b, spatial_padding=1)
    assert y.is_contiguous(memory_format=torch.channels_last_3d)
    assert_close(y, _ref(x, w, b, spatial_padding=1), dtype)
    xc.requires_grad_(True)
    gy = randn(*y.shape, dtype=dtype)
    (gx,) = torch.autograd.grad(causal_conv3d(xc, w, b, spatial_padding=1), [xc], gy)
    assert gx.is_contiguous(memory_format=torch.channels_last_3d)
    x64 = f64(x).requires_grad_(True)
    (ex,) = torch.autograd.grad(ref.causal_conv3d(x64, f64(w), f64(b), spatial_padding=1), [x64], f64(gy))
    assert_grad_close(gx, ex, dtype, "grad x, channels-last")


def test_non_contiguous_input():
    x, w, b = _inputs(1, 3, 10, 6, 8, 4, (3, 3, 3))
    xs = x[:, :, ::2, :, 1:7]
    assert_close(causal_conv3d(xs, w, b, spatial_padding=1), _ref(xs, w, b, spatial_padding=1), torch.float32)


# ---- the module ----

def _diffusers_like(m, inputs, conv_cache=None):
    """CogVideoXCausalConv3d's forward, written out: cat of first frames or cache, then zero pad."""
    k = m.time_kernel_size
    padded = torch.cat(([conv_cache] if conv_cache is not None else [inputs[:, :, :1]] * (k - 1)) + [inputs], 2)
    new_cache = padded[:, :, padded.shape[2] - (k - 1):]
    padded = torch.nn.functional.pad(padded, (m.width_pad, m.width_pad, m.height_pad, m.height_pad))
    return m.conv(padded), new_cache


@pytest.mark.parametrize("kernel,stride", [(3, 1), (1, 1), ((3, 1, 1), 1), (3, 2)])
def test_module_matches_cogvideox_forward(kernel, stride):
    torch.manual_seed(0)
    m = CausalConv3d(4, 6, kernel, stride=stride).double()
    assert set(m.state_dict()) == {"conv.weight", "conv.bias"}
    x = randn(1, 4, 5, 6, 7, dtype=torch.float64)
    y, cache = m(x)
    ey, ecache = _diffusers_like(m, x)
    torch.testing.assert_close(y, ey)
    torch.testing.assert_close(cache, ecache)
    x2 = randn(1, 4, 4, 6, 7, dtype=torch.float64)
    y2, _ = m(x2, conv_cache=cache)
    torch.testing.assert_close(y2, _diffusers_like(m, x2, ecache)[0])


def test_module_replicate_mode_and_dilation():
    m = CausalConv3d(3, 2, 3, pad_mode="replicate").double()
    x = randn(1, 3, 4, 5, 5, dtype=torch.float64)
    y, cache = m(x)
    assert cache is None
    torch.testing.assert_close(y, m.conv(torch.nn.functional.pad(x, (1, 1, 1, 1, 2, 0), mode="replicate")))
    md = CausalConv3d(3, 2, 3, dilation=2).double()
    y, cache = md(randn(1, 3, 6, 5, 5, dtype=torch.float64))
    assert y.shape == (1, 2, 4, 5, 5) and cache.shape == (1, 3, 2, 5, 5)


def test_module_exported():
    assert lavin_fast.conv.CausalConv3d is CausalConv3d


@pytest.mark.parametrize("n,stride,t,layout", [(1, 1, 7, "ncdhw"), (1, (2, 1, 1), 9, "ncdhw"), (2, 1, 5, "ncdhw"),
                                               (1, 1, 7, "cl")])
def test_large_output_in_chunks(n, stride, t, layout):
    """Outputs over 8 MiB go through oneDNN in chunks of output frames (NCDHW: frames shared by two
    chunks are kept in the channels-last buffer, not converted again); small tests never chunk."""
    x = randn(n, 2, t, 256, 256)
    if layout == "cl":
        x = x.contiguous(memory_format=torch.channels_last_3d)
    w, b = randn(32, 2, 3, 3, 3, scale=0.2), randn(32)
    got = causal_conv3d(x, w, b, stride=stride, spatial_padding=1)
    assert got.shape[2] * got[0, :, 0].numel() * 4 * n > 16 << 20  # more than one chunk's worth
    assert_close(got, ref.causal_conv3d(f64(x), f64(w), f64(b), stride=stride, spatial_padding=1),
                 torch.float32, f"n={n} stride={stride} t={t} {layout}")


@pytest.mark.parametrize("head", ["pieces", "padded"])
@pytest.mark.parametrize("kernel,stride", [((3, 3, 3), (1, 1, 1)), ((4, 1, 3), (2, 1, 1)), ((2, 3, 3), (2, 2, 2))],
                         ids=str)
@pytest.mark.parametrize("mode", ["replicate", "zeros", "cache"])
@pytest.mark.parametrize("layout", ["ncdhw", "cl"])
def test_head_strategies(head, kernel, stride, mode, layout, monkeypatch):
    """The fp32 CPU path computes the head frames as pieces with summed taps or as one convolution over
    a small padded copy, by a cost estimate; both, forced, against the reference (T = 1 has no bulk)."""
    monkeypatch.setenv("LAVIN_FAST_CONV_HEAD", head)
    for t in (1, 2, 6):
        x, w, b = _inputs(2, 5, t, 7, 6, 4, kernel)
        cache = randn(2, 5, kernel[0] - 1, 7, 6) if mode == "cache" else None
        if layout == "cl":
            x = x.contiguous(memory_format=torch.channels_last_3d)
        pad = "replicate" if mode == "cache" else mode
        kw = dict(stride=stride, spatial_padding=_pad(kernel), temporal_pad=pad, cache=cache)
        assert_close(causal_conv3d(x, w, b, **kw), _ref(x, w, b, **kw), torch.float32, f"{head} T={t}")


def test_head_strategy_override_is_checked(monkeypatch):
    monkeypatch.setenv("LAVIN_FAST_CONV_HEAD", "fast")
    x, w, b = _inputs(1, 2, 3, 4, 4, 2, (3, 3, 3))
    with pytest.raises(RuntimeError, match="LAVIN_FAST_CONV_HEAD must be 'pieces' or 'padded'"):
        causal_conv3d(x, w, b, spatial_padding=1)


@pytest.mark.parametrize("layout", ["ncdhw", "cl"])
def test_channels_last_weight(layout):
    """A channels-last weight (model.to(memory_format=torch.channels_last_3d)) is packed the
    channels-last way, read in place; a plain one without a copy: both equal the reference."""
    x, w, b = _inputs(2, 6, 5, 9, 7, 10, (3, 3, 3))
    if layout == "cl":
        x = x.contiguous(memory_format=torch.channels_last_3d)
    for weight in (w, w.contiguous(memory_format=torch.channels_last_3d)):
        for t in (1, 5):
            xi = x[:, :, :t]
            assert_close(causal_conv3d(xi, weight, b, spatial_padding=1), _ref(xi, w, b, spatial_padding=1),
                         torch.float32, f"{layout} T={t} weight cl={not weight.is_contiguous()}")
