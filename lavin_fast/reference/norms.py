"""Reference RMSNorm family (see lavin_fast.norms for the shapes)."""

import torch


def _compute_dtype(dtype):
    return torch.promote_types(dtype, torch.float32)


def _rms(x, eps):
    """x / sqrt(mean(x^2) + eps) over the last dimension."""
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)


def per_token(param, x, cu_seqlens):
    """Broadcasts a per-sample tensor to x's rows.

    padded: param (B, D), x (B, L, D) -> (B, 1, D);
    packed: param (S, D), x (T, D), cu_seqlens (S + 1,) -> (T, D), row t taking its sample's row.
    """
    if cu_seqlens is None:
        return param.unsqueeze(1)
    lengths = cu_seqlens[1:] - cu_seqlens[:-1]
    return torch.repeat_interleave(param, lengths.long(), dim=0, output_size=x.shape[0])


def rms_norm(x, weight=None, eps=1e-6):
    """y = x / sqrt(mean(x^2) + eps) * weight."""
    c = _compute_dtype(x.dtype)
    y = _rms(x.to(c), eps)
    if weight is not None:
        y = y * weight.to(c)
    return y.to(x.dtype)


def rms_norm_modulate(x, scale, shift=None, eps=1e-6, cu_seqlens=None):
    """y = rms(x) * (1 + scale) + shift, scale/shift per sample (AdaRN pre-norm)."""
    c = _compute_dtype(x.dtype)
    y = _rms(x.to(c), eps) * (1 + per_token(scale.to(c), x, cu_seqlens))
    if shift is not None:
        y = y + per_token(shift.to(c), x, cu_seqlens)
    return y.to(x.dtype)


def gated_rms_residual(residual, y, gate, eps=1e-6, gate_act="tanh", cu_seqlens=None):
    """out = residual + act(gate) * rms(y), gate per sample (sandwich post-norm + gated residual)."""
    c = _compute_dtype(y.dtype)
    g = per_token(gate.to(c), y, cu_seqlens)
    if gate_act == "tanh":
        g = torch.tanh(g)
    elif gate_act != "none":
        raise ValueError(f'gate_act must be "tanh" or "none", got {gate_act!r}')
    return (residual.to(c) + g * _rms(y.to(c), eps)).to(residual.dtype)
