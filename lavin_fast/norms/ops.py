"""The RMSNorm family as PyTorch operators: fake (meta) kernels, autograd, and the public functions.

Shapes (D = hidden size; fp32, bf16 or fp16 activations, fp32 accumulation):
  padded: x (B, L, D) with per-sample tensors (B, D) (or (B, 1, D));
  packed: x (T, D) with cu_seqlens (S + 1,) int32 and per-sample tensors (S, D): token t uses the row
          of the sample whose [cu_seqlens[s], cu_seqlens[s + 1]) range holds t.
Per-sample tensors and norm weights may be fp32 or any of the activation dtypes.
"""

import torch

from lavin_fast._checks import check_device, check_dim, check_dtype, check_shape, check_tensor, fail
from lavin_fast._fake import register_fake
from lavin_fast._native import load

load()
_ops = torch.ops.lavin_fast


def _rstd_like(x):
    return x.new_empty(x.shape[:-1], dtype=torch.float32)


def _empty_grad(x):
    return x.new_empty((0,))


# ---- fake (meta) kernels: shapes only; the native kernels check values ----

@register_fake("lavin_fast::rms_norm")
def _rms_norm_fake(x, weight, eps):
    return torch.empty_like(x, memory_format=torch.contiguous_format), _rstd_like(x)


@register_fake("lavin_fast::rms_norm_backward")
def _rms_norm_backward_fake(grad_y, x, weight, rstd, weight_requires_grad):
    gw = weight.new_empty(weight.shape) if weight_requires_grad else _empty_grad(x)
    return torch.empty_like(x, memory_format=torch.contiguous_format), gw


@register_fake("lavin_fast::rms_norm_modulate")
def _rms_norm_modulate_fake(x, scale, shift, cu_seqlens, eps):
    return torch.empty_like(x, memory_format=torch.contiguous_format), _rstd_like(x)


@register_fake("lavin_fast::rms_norm_modulate_backward")
def _rms_norm_modulate_backward_fake(grad_y, x, scale, cu_seqlens, rstd, scale_rg, shift_rg):
    gs = scale.new_empty(scale.shape) if scale_rg else _empty_grad(x)
    gb = scale.new_empty(scale.shape) if shift_rg else _empty_grad(x)
    return torch.empty_like(x, memory_format=torch.contiguous_format), gs, gb


@register_fake("lavin_fast::gated_rms_residual")
def _gated_rms_residual_fake(residual, y, gate, cu_seqlens, eps, gate_act):
    return torch.empty_like(y, memory_format=torch.contiguous_format), _rstd_like(y)


@register_fake("lavin_fast::gated_rms_residual_backward")
def _gated_rms_residual_backward_fake(grad_out, y, gate, cu_seqlens, rstd, gate_act, gate_rg):
    gg = gate.new_empty(gate.shape) if gate_rg else _empty_grad(y)
    return torch.empty_like(y, memory_format=torch.contiguous_format), gg


# ---- autograd ----

def _rms_norm_setup(ctx, inputs, output):
    x, weight, _ = inputs
    ctx.save_for_backward(x, weight, output[1])


def _rms_norm_bwd(ctx, grad_y, _grad_rstd):
    x, weight, rstd = ctx.saved_tensors
    need_w = ctx.needs_input_grad[1]
    gx, gw = _ops.rms_norm_backward(grad_y, x, weight, rstd, need_w)
    return gx, (gw if need_w else None), None


torch.library.register_autograd("lavin_fast::rms_norm", _rms_norm_bwd, setup_context=_rms_norm_setup)


def _modulate_setup(ctx, inputs, output):
    x, scale, shift, cu_seqlens, _ = inputs
    ctx.shift_dtype = None if shift is None else shift.dtype
    ctx.save_for_backward(x, scale, cu_seqlens, output[1])


def _modulate_bwd(ctx, grad_y, _grad_rstd):
    x, scale, cu_seqlens, rstd = ctx.saved_tensors
    need_scale, need_shift = ctx.needs_input_grad[1], ctx.needs_input_grad[2]
    gx, gs, gb = _ops.rms_norm_modulate_backward(grad_y, x, scale, cu_seqlens, rstd, need_scale,
                                                 need_shift)
    gb = gb.to(ctx.shift_dtype) if need_shift else None
    return gx, (gs if need_scale else None), gb, None, None


torch.library.register_autograd("lavin_fast::rms_norm_modulate", _modulate_bwd,
                                setup_context=_modulate_setup)


def _gated_setup(ctx, inputs, output):
    residual, y, gate, cu_seqlens, _, gate_act = inputs
    ctx.gate_act = gate_act
    ctx.save_for_backward(y, gate, cu_seqlens, output[1])


def _gated_bwd(ctx, grad_out, _grad_rstd):
    y, gate, cu_seqlens, rstd = ctx.saved_tensors
    need_gate = ctx.needs_input_grad[2]
    gy, gg = _ops.gated_rms_residual_backward(grad_out, y, gate, cu_seqlens, rstd, ctx.gate_act,
                                              need_gate)
    return grad_out, gy, (gg if need_gate else None), None, None, None


torch.library.register_autograd("lavin_fast::gated_rms_residual", _gated_bwd,
                                setup_context=_gated_setup)


# ---- argument checks of the public functions ----
# Shapes, dtypes and devices only (they trace under torch.compile); the native kernels repeat them
# and also check the values of cu_seqlens.

def _check_param(fn, name, t, x, x_name, shape, layout):
    check_tensor(fn, name, t, like=(x, x_name))
    check_shape(fn, name, t, shape, layout)


def _num_samples(fn, x, x_name, cu_seqlens):
    """S for packed input (x (T, D) + cu_seqlens (S + 1,)), B for padded input (x (B, L, D))."""
    if cu_seqlens is None:
        check_dim(fn, x_name, x, 3, "(B, L, D) without cu_seqlens")
        return x.shape[0], "(B, D)"
    check_dtype(fn, "cu_seqlens", cu_seqlens, (torch.int32,))
    if cu_seqlens.dim() != 1 or cu_seqlens.shape[0] < 1:
        fail(fn, ValueError, f"argument 'cu_seqlens' must be 1-D (S + 1,), got shape {tuple(cu_seqlens.shape)}")
    check_device(fn, "cu_seqlens", cu_seqlens, x, x_name)
    check_dim(fn, x_name, x, 2, "(T, D) when cu_seqlens is given")
    return cu_seqlens.shape[0] - 1, "(S, D) with S = len(cu_seqlens) - 1"


def _per_sample(t, x, cu_seqlens):
    """Accepts (B, 1, D) per-sample tensors in the padded form (the usual DiT broadcast shape)."""
    if t is not None and cu_seqlens is None and t.dim() == 3 and t.shape[1] == 1 and x.dim() == 3:
        return t.squeeze(1)
    return t


# ---- public functions ----


def rms_norm(x, weight=None, eps=1e-6):
    """RMSNorm over the last dimension: ``x / sqrt(mean(x^2) + eps) * weight``.

    x: (..., D); weight: (D,) or None. Returns a tensor shaped and typed like x.
    """
    fn = "lavin_fast.rms_norm"
    check_tensor(fn, "x", x)
    if weight is not None:
        _check_param(fn, "weight", weight, x, "x", x.shape[-1:], "(D,) with D = x.shape[-1]")
    return _ops.rms_norm(x, weight, eps)[0]


def rms_norm_modulate(x, scale, shift=None, eps=1e-6, cu_seqlens=None):
    """AdaRN pre-norm: ``rms(x) * (1 + scale) + shift``, scale and shift per sample.

    padded: x (B, L, D), scale/shift (B, D) or (B, 1, D);
    packed: x (T, D), cu_seqlens (S + 1,) int32, scale/shift (S, D).
    """
    fn = "lavin_fast.rms_norm_modulate"
    check_tensor(fn, "x", x)
    scale = _per_sample(scale, x, cu_seqlens)
    shift = _per_sample(shift, x, cu_seqlens)
    n, layout = _num_samples(fn, x, "x", cu_seqlens)
    _check_param(fn, "scale", scale, x, "x", (n, x.shape[-1]), layout)
    if shift is not None:
        _check_param(fn, "shift", shift, x, "x", (n, x.shape[-1]), layout)
    return _ops.rms_norm_modulate(x, scale, shift, cu_seqlens, eps)[0]


def gated_rms_residual(residual, y, gate, eps=1e-6, gate_act="tanh", cu_seqlens=None):
    """Sandwich post-norm with gated residual: ``residual + act(gate) * rms(y)``.

    residual, y: (B, L, D) padded or (T, D) packed with cu_seqlens; gate (B, D) / (S, D);
    gate_act "tanh" (LaVin-DiT) or "none". The result has residual's dtype: a y of another dtype
    (bf16 attention output under autocast, fp32 residual stream) is cast to it first.
    """
    fn = "lavin_fast.gated_rms_residual"
    if gate_act not in ("tanh", "none"):
        fail(fn, ValueError, f"argument 'gate_act' must be \"tanh\" or \"none\", got {gate_act!r}")
    check_tensor(fn, "residual", residual)
    check_tensor(fn, "y", y, like=(residual, "residual"))
    if y.shape != residual.shape:
        fail(fn, ValueError, f"argument 'y' must have the shape of 'residual' {tuple(residual.shape)}, got "
                             f"{tuple(y.shape)}")
    gate = _per_sample(gate, y, cu_seqlens)
    n, layout = _num_samples(fn, y, "y", cu_seqlens)
    _check_param(fn, "gate", gate, y, "y", (n, y.shape[-1]), layout)
    if y.dtype != residual.dtype:
        y = y.to(residual.dtype)
    return _ops.gated_rms_residual(residual, y, gate, cu_seqlens, eps, gate_act)[0]
