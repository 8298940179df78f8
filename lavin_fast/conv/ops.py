"""Causal 3-D convolution as a PyTorch operator: fake kernel, autograd, and the public function.

Shapes: x (N, C, T, H, W) (contiguous or channels-last-3d), weight (O, C, k_t, k_h, k_w), bias (O,),
cache (N, C, k_t - 1, H, W) -> y (N, O, T_out, H_out, W_out) with T_out = (T - 1) // s_t + 1 and
H_out = (H + 2 p_h - k_h) // s_h + 1 (W alike). fp32, bf16, fp16 (and float64 on the CPU path).
"""

import torch
from torch._prims_common import suggest_memory_format

from lavin_fast._checks import check_dim, check_dtype, check_dtype_of, check_is_tensor, check_shape, fail
from lavin_fast._fake import register_fake
from lavin_fast._native import load

load()
_ops = torch.ops.lavin_fast

_OP = "lavin_fast.causal_conv3d"
_DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.float64)
_MAX_KERNEL = 7


def _out_shape(x, weight, stride, padding):
    n, _, t, h, w = x.shape
    o, _, _, kh, kw = weight.shape
    st, sh, sw = stride
    ph, pw = padding
    return (n, o, (t - 1) // st + 1, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)


# ---- fake (meta) kernels: shapes only; the native code checks everything ----

@register_fake("lavin_fast::causal_conv3d")
def _causal_conv3d_fake(x, weight, bias, stride, padding, temporal_pad, cache, return_cache):
    fmt = suggest_memory_format(x)
    y = x.new_empty(_out_shape(x, weight, stride, padding)).contiguous(memory_format=fmt)
    if return_cache:
        n, c, _, h, w = x.shape
        new_cache = x.new_empty((n, c, weight.shape[2] - 1, h, w)).contiguous(memory_format=fmt)
    else:
        new_cache = x.new_empty((0,))
    return y, new_cache


@register_fake("lavin_fast::causal_conv3d_backward")
def _causal_conv3d_backward_fake(grad_y, grad_new_cache, x, weight, has_bias, stride, padding,
                                 temporal_pad, cache):
    gx = torch.empty_like(x, memory_format=suggest_memory_format(x))
    gb = x.new_empty((weight.shape[0],)) if has_bias else x.new_empty((0,))
    gc = torch.empty_like(cache) if cache is not None else x.new_empty((0,))
    return gx, x.new_empty(weight.shape), gb, gc


# ---- autograd ----

def _setup(ctx, inputs, output):
    x, weight, bias, stride, padding, temporal_pad, cache, return_cache = inputs
    ctx.args = (bias is not None, stride, padding, temporal_pad)
    ctx.return_cache = return_cache
    ctx.save_for_backward(x, weight, cache)


def _backward(ctx, grad_y, grad_new_cache):
    x, weight, cache = ctx.saved_tensors
    has_bias, stride, padding, temporal_pad = ctx.args
    if grad_y is None:
        grad_y = torch.zeros(_out_shape(x, weight, stride, padding), dtype=x.dtype, device=x.device)
    if not ctx.return_cache:
        grad_new_cache = None
    gx, gw, gb, gc = _ops.causal_conv3d_backward(grad_y, grad_new_cache, x, weight, has_bias, stride,
                                                 padding, temporal_pad, cache)
    return gx, gw, (gb if has_bias else None), None, None, None, (gc if cache is not None else None), None


torch.library.register_autograd("lavin_fast::causal_conv3d", _backward, setup_context=_setup)


# ---- public function ----

def _triple(v, name):
    if isinstance(v, int):
        return [v, v, v]
    v = list(v)
    if len(v) != 3 or not all(isinstance(i, int) for i in v):
        fail(_OP, ValueError, f"argument '{name}' must be an int or 3 ints (s_t, s_h, s_w), got {v}")
    return v


def _pair(v, name):
    if isinstance(v, int):
        return [v, v]
    v = list(v)
    if len(v) != 2 or not all(isinstance(i, int) for i in v):
        fail(_OP, ValueError, f"argument '{name}' must be an int or 2 ints (p_h, p_w), got {v}")
    return v


def _check(x, weight, bias, cache, temporal_pad):
    for name, t in (("x", x), ("weight", weight)):
        check_is_tensor(_OP, name, t)
    check_dim(_OP, "x", x, 5, "(N, C, T, H, W)")
    check_dim(_OP, "weight", weight, 5, "(O, C, k_t, k_h, k_w)")
    check_dtype(_OP, "x", x, _DTYPES)
    for name, t in (("weight", weight), ("bias", bias), ("cache", cache)):
        if t is not None:
            check_dtype_of(_OP, name, t, x, "x")
    if any(not 1 <= k <= _MAX_KERNEL for k in weight.shape[2:]):
        fail(_OP, ValueError, f"kernel sizes must be in [1, {_MAX_KERNEL}], got weight shape {tuple(weight.shape)}")
    if temporal_pad not in ("replicate", "zeros"):
        fail(_OP, ValueError, f"argument 'temporal_pad' must be \"replicate\" or \"zeros\", got {temporal_pad!r}")
    if cache is not None:
        n, c, _, h, w = x.shape
        check_shape(_OP, "cache", cache, (n, c, weight.shape[2] - 1, h, w), "(N, C, k_t - 1, H, W)")


def causal_conv3d(x, weight, bias=None, stride=1, spatial_padding=0, temporal_pad="replicate", cache=None,
                  return_cache=False):
    """Causal 3-D convolution without a padded copy of x.

    Equal to ``conv3d(cat([pad, x], dim=2), weight, bias, stride, padding=(0, p_h, p_w))`` where pad is
    k_t - 1 copies of x's first frame ("replicate"), zeros ("zeros"), or `cache` (the previous chunk's
    last k_t - 1 padded frames; overrides temporal_pad). Spatial padding is zeros.

    x (N, C, T, H, W) or channels-last-3d; weight (O, C, k_t, k_h, k_w); bias (O,); stride int or
    (s_t, s_h, s_w); spatial_padding int or (p_h, p_w); cache (N, C, k_t - 1, H, W).
    Returns y (N, O, (T - 1) // s_t + 1, H_out, W_out), and with return_cache=True also the new cache
    (N, C, k_t - 1, H, W): running a clip in chunks, passing the cache along, equals one pass. With
    temporal stride s_t that holds when every chunk but the last has a multiple of s_t frames (each
    call starts its output grid at its first frame).
    Gradients flow to x, weight, bias and cache.
    """
    _check(x, weight, bias, cache, temporal_pad)
    y, new_cache = _ops.causal_conv3d(x, weight, bias, _triple(stride, "stride"),
                                      _pair(spatial_padding, "spatial_padding"), temporal_pad, cache,
                                      return_cache)
    return (y, new_cache) if return_cache else y
