"""Modules of the RMSNorm family: apex-compatible RMSNorm and the AdaRN pieces of a J-DiT block."""

import numbers

import torch
from torch import nn

from lavin_fast._checks import dtype_name
from lavin_fast.norms.ops import gated_rms_residual, rms_norm, rms_norm_modulate


class RMSNorm(nn.Module):
    """Drop-in for apex.normalization.FusedRMSNorm (same constructor and ``weight`` parameter).

    Normalises over the trailing ``normalized_shape`` dimensions. ``memory_efficient`` is accepted
    for compatibility; this implementation always saves the input and the fp32 rstd (D times
    smaller than the input) for the backward.
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, memory_efficient=False,
                 device=None, dtype=None):
        super().__init__()
        if isinstance(normalized_shape, numbers.Integral):
            normalized_shape = (normalized_shape,)
        self.normalized_shape = torch.Size(normalized_shape)
        self.eps = eps
        self.elementwise_affine = elementwise_affine
        self.memory_efficient = memory_efficient
        if elementwise_affine:
            self.weight = nn.Parameter(torch.ones(self.normalized_shape, device=device, dtype=dtype))
        else:
            self.register_parameter("weight", None)

    def reset_parameters(self):
        if self.weight is not None:
            nn.init.ones_(self.weight)

    def forward(self, x):
        n = len(self.normalized_shape)
        if tuple(x.shape[-n:]) != tuple(self.normalized_shape):
            raise ValueError(f"RMSNorm: input's trailing shape {tuple(x.shape[-n:])} does not match "
                             f"normalized_shape {tuple(self.normalized_shape)}")
        if n == 1:
            return rms_norm(x, self.weight, self.eps)
        flat = x.reshape(*x.shape[:-n], -1)
        w = None if self.weight is None else self.weight.reshape(-1)
        return rms_norm(flat, w, self.eps).reshape(x.shape)

    def extra_repr(self):
        return f"{tuple(self.normalized_shape)}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"


class AdaRMSNorm(nn.Module):
    """AdaRN pre-norm ``rms(x) * (1 + scale) + shift`` (LaVin-DiT: no shift, eps 1e-6). No parameters:
    scale and shift come from the block's modulation."""

    def __init__(self, eps=1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, x, scale, shift=None, cu_seqlens=None):
        return rms_norm_modulate(x, scale, shift, self.eps, cu_seqlens=cu_seqlens)

    def extra_repr(self):
        return f"eps={self.eps}"


class GatedRMSResidual(nn.Module):
    """Sandwich post-norm with a gated residual: ``residual + tanh(gate) * rms(y)``."""

    def __init__(self, eps=1e-6, gate_act="tanh"):
        super().__init__()
        self.eps = eps
        self.gate_act = gate_act

    def forward(self, residual, y, gate, cu_seqlens=None):
        return gated_rms_residual(residual, y, gate, self.eps, self.gate_act, cu_seqlens=cu_seqlens)

    def extra_repr(self):
        return f"eps={self.eps}, gate_act={self.gate_act!r}"


class JDiTModulation(nn.Sequential):
    """A J-DiT block's modulation for one stream: SiLU, then Linear(D -> 4D) with bias, zero-initialised
    so every block starts as the identity. State-dict keys ``1.weight`` / ``1.bias`` as released
    (``blocks.N.{cond,x}_modulation.1.*``). Returns (scale_attn, gate_attn, scale_mlp, gate_mlp),
    each shaped like the conditioning with last dim D."""

    def __init__(self, hidden_size, device=None, dtype=None):
        super().__init__(nn.SiLU(), nn.Linear(hidden_size, 4 * hidden_size, bias=True, device=device,
                                              dtype=dtype))
        nn.init.zeros_(self[1].weight)
        nn.init.zeros_(self[1].bias)

    def forward(self, c):
        # nn.Linear's own errors name neither the argument nor the parameter ("mat1 and mat2 ..."). Under
        # autocast the parameters may have another dtype (autocast casts them).
        linear = self[1]
        hidden = linear.in_features
        if not isinstance(c, torch.Tensor) or not c.is_floating_point() or c.dim() < 1 or c.shape[-1] != hidden:
            got = (f"dtype {dtype_name(c)} and shape {tuple(c.shape)}"
                   if isinstance(c, torch.Tensor) else type(c).__name__)
            raise ValueError(f"JDiTModulation: argument 'c' must be a floating-point tensor (..., hidden_size) "
                             f"with hidden_size = {hidden}, got {got}")
        for name, p, shape in (("weight", linear.weight, (4 * hidden, hidden)), ("bias", linear.bias, (4 * hidden,))):
            if p.device != c.device or (p.dtype != c.dtype and not torch.is_autocast_enabled(c.device.type)):
                raise TypeError(f"JDiTModulation: parameter '{name}' must have the dtype and device of argument 'c' "
                                f"({dtype_name(c)} on {c.device}), got {dtype_name(p)} on {p.device}")
            if tuple(p.shape) != shape:
                raise ValueError(f"JDiTModulation: parameter '{name}' must have shape {shape}, got {tuple(p.shape)}")
        return super().forward(c).chunk(4, dim=-1)
