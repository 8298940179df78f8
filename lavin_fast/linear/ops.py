"""`linear` (y = x W^T + b) as a PyTorch operator: fake kernel, autograd, and the public function.

It exists for speed, not new math: on the CPU in fp32 it runs oneDNN's inner product, which on AMD
processors is ~2.3x faster than the MKL sgemm behind F.linear (MKL takes its AVX2 path there); see
bench/bench_linear.py. Everything else (bf16/fp16, CUDA, autocast) computes exactly what F.linear does.
"""

import torch

from lavin_fast._fake import register_fake
from lavin_fast._native import load

load()
_ops = torch.ops.lavin_fast


@register_fake("lavin_fast::linear")
def _linear_fake(x, weight, bias):
    return x.new_empty((*x.shape[:-1], weight.shape[0]))


@register_fake("lavin_fast::linear_backward")
def _linear_backward_fake(grad_y, x, weight, output_mask):
    shapes = (x.shape, weight.shape, (weight.shape[0],))
    return tuple(x.new_empty(s if on else (0,)) for s, on in zip(shapes, output_mask))


def _setup(ctx, inputs, output):
    x, weight, bias = inputs
    ctx.has_bias = bias is not None
    ctx.save_for_backward(x, weight)


def _backward(ctx, grad_y):
    x, weight = ctx.saved_tensors
    need = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], ctx.has_bias and ctx.needs_input_grad[2]]
    gx, gw, gb = _ops.linear_backward(grad_y.contiguous(), x, weight, need)
    return (gx if need[0] else None), (gw if need[1] else None), (gb if need[2] else None)


torch.library.register_autograd("lavin_fast::linear", _backward, setup_context=_setup)


def linear(x, weight, bias=None):
    """y = x @ weight.T + bias, like `torch.nn.functional.linear`.

    x (..., in_features), weight (out_features, in_features), bias (out_features,) or None, all of
    one dtype and device. Under autocast it is F.linear (which autocast already routes well), so
    mixed-precision training behaves exactly as with nn.Linear.
    """
    # Meta has no autocast (is_autocast_enabled("meta") raises): meta tensors go to the op, which checks devices.
    if torch.amp.is_autocast_available(x.device.type) and torch.is_autocast_enabled(x.device.type):
        return torch.nn.functional.linear(x, weight, bias)
    return _ops.linear(x, weight, bias)
