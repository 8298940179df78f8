"""Fused QK RMSNorm + 3-D RoPE as a PyTorch operator: fake (meta) kernels, autograd, public functions.

Shapes: x (..., W) with W = num_heads * head_dim: packed (total, W) or padded (B, L, W); positions
(..., 3) int32 or int64 (t, h, w) per token, matching x's leading dims; weight (W,) or None (fp32 or
x's dtype). fp32, bf16 or fp16 activations with fp32 math inside.

Positions: any int32 value (negative too) is an exact rotation to fp32 accuracy (the angle is formed and
reduced in double). int64 positions outside the int32 range are an error on the CPU; on CUDA they are
not checked (that would synchronise the device) and must already fit in int32.
"""

import torch

from lavin_fast._checks import FLOATS, check_device, check_dtype, check_shape, dtype_name, fail
from lavin_fast._fake import register_fake
from lavin_fast._native import load

load()
_ops = torch.ops.lavin_fast

_OP = "lavin_fast.qk_norm_rope"
_MAX_HEAD_DIM = 256


def default_sections(head_dim):
    """Equal thirds (t, h, w), each even: head_dim must be a multiple of 6 (72 -> 24/24/24)."""
    if head_dim % 6 != 0:
        raise ValueError(f"head_dim = {head_dim} is not a multiple of 6, so it has no default split into "
                         "three even sections: pass 'sections' (3 even sizes summing to head_dim)")
    return [head_dim // 3] * 3


# ---- fake (meta) kernels ----

@register_fake("lavin_fast::qk_norm_rope")
def _qk_norm_rope_fake(x, weight, positions, num_heads, eps, sections, bases, interleaved, normalize):
    return (torch.empty_like(x, memory_format=torch.contiguous_format),
            x.new_empty(x.shape[:-1], dtype=torch.float32))


@register_fake("lavin_fast::qk_norm_rope_backward")
def _qk_norm_rope_backward_fake(grad_y, x, weight, positions, rstd, num_heads, sections, bases, interleaved,
                                normalize, weight_requires_grad):
    gw = weight.new_empty(weight.shape) if weight_requires_grad else x.new_empty((0,))
    return torch.empty_like(x, memory_format=torch.contiguous_format), gw


# ---- autograd ----

def _setup(ctx, inputs, output):
    x, weight, positions, num_heads, _eps, sections, bases, interleaved, normalize = inputs
    ctx.args = (num_heads, sections, bases, interleaved, normalize)
    ctx.save_for_backward(x, weight, positions, output[1])


def _backward(ctx, grad_y, _grad_rstd):
    x, weight, positions, rstd = ctx.saved_tensors
    need_w = ctx.needs_input_grad[1]
    gx, gw = _ops.qk_norm_rope_backward(grad_y, x, weight, positions, rstd, *ctx.args, need_w)
    return gx, (gw if need_w else None), None, None, None, None, None, None, None


torch.library.register_autograd("lavin_fast::qk_norm_rope", _backward, setup_context=_setup)


# ---- argument checks (shapes, dtypes, devices: they trace under torch.compile) ----

def _check_args(x, weight, positions, num_heads, eps, sections, bases):
    """Returns (head_dim, sections as a list of 3 ints, bases as a list of floats)."""
    check_dtype(_OP, "x", x, FLOATS)
    if x.dim() < 1 or x.shape[-1] < 1:
        fail(_OP, ValueError, f"argument 'x' must have a last dimension of size >= 1 (num_heads * head_dim), "
                              f"got shape {tuple(x.shape)}")
    if not isinstance(num_heads, int) or num_heads < 1:
        fail(_OP, ValueError, f"argument 'num_heads' must be an int >= 1, got {num_heads!r}")
    width = x.shape[-1]
    if width % num_heads != 0:
        fail(_OP, ValueError, f"argument 'num_heads' ({num_heads}) must divide x.shape[-1] = {width} (the "
                              "projected width num_heads * head_dim)")
    d = width // num_heads
    if d % 2 != 0 or d > _MAX_HEAD_DIM:
        fail(_OP, ValueError, f"head_dim = x.shape[-1] / num_heads = {d} must be even and <= {_MAX_HEAD_DIM}")
    if eps < 0:
        fail(_OP, ValueError, f"argument 'eps' must be >= 0, got {eps}")
    if weight is not None:
        if not isinstance(weight, torch.Tensor) or weight.dtype not in FLOATS:
            fail(_OP, TypeError, "argument 'weight' must have dtype float32 or bfloat16 or float16")
        if weight.dtype not in (x.dtype, torch.float32):
            fail(_OP, TypeError, f"argument 'weight' must have the dtype of 'x' ({dtype_name(x)}) or float32, "
                                 f"got {dtype_name(weight)}")
        check_device(_OP, "weight", weight, x, "x")
        check_shape(_OP, "weight", weight, (width,), "(W,) with W = x.shape[-1]")
    check_dtype(_OP, "positions", positions, (torch.int32, torch.int64))
    check_device(_OP, "positions", positions, x, "x")
    expected = (*x.shape[:-1], 3)
    if tuple(positions.shape) != expected:
        fail(_OP, ValueError, f"argument 'positions' must have shape x.shape[:-1] + (3,) = {expected} ((t, h, w) "
                              f"per token), got {tuple(positions.shape)}")
    if sections is None:
        try:
            sections = default_sections(d)
        except ValueError as e:
            fail(_OP, ValueError, str(e))
    sections = [int(s) for s in sections]
    if len(sections) != 3:
        fail(_OP, ValueError, f"argument 'sections' must have 3 entries (t, h, w), got {len(sections)}")
    for a, s in enumerate(sections):
        if s < 0 or s % 2:
            fail(_OP, ValueError, f"argument 'sections' must hold even sizes >= 0, got sections[{a}] = {s}")
    if sum(sections) != d:
        fail(_OP, ValueError, f"argument 'sections' must sum to head_dim = {d}, got "
                              f"{' + '.join(map(str, sections))} = {sum(sections)}")
    bases = [float(bases)] if isinstance(bases, (int, float)) else [float(b) for b in bases]
    if len(bases) not in (1, 3) or any(not (b > 0 and b != float("inf")) for b in bases):
        fail(_OP, ValueError, f"argument 'bases' must be one value or 3 values, finite and > 0, got {bases}")
    return d, sections, bases


# ---- public functions ----

def qk_norm_rope(x, weight, positions, num_heads, *, eps=1e-6, sections=None, bases=10000.0, interleaved=False,
                 normalize=True):
    """RMSNorm over the full projected width, then 3-D RoPE per head, in one pass over x.

    x (..., num_heads * D); weight (num_heads * D,) or None; positions (..., 3) int (t, h, w).
    sections: 3 even sizes summing to D (default equal thirds); bases: one base or one per axis;
    interleaved: pair columns (2i, 2i+1) instead of LaVin-DiT's rotate-half; normalize=False skips the
    RMSNorm (RoPE of x * weight only). Returns y (..., num_heads, D) in x's dtype. Differentiable in x
    and weight.
    """
    d, sections, bases = _check_args(x, weight, positions, num_heads, eps, sections, bases)
    y = _ops.qk_norm_rope(x, weight, positions, num_heads, eps, sections, bases, interleaved, normalize)[0]
    return y.unflatten(-1, (num_heads, d))


def apply_rope_3d(x, positions, *, sections=None, bases=10000.0, interleaved=False):
    """3-D RoPE alone: x (..., H, D), positions (..., 3) -> rotated x (..., H, D)."""
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        fail(_OP, ValueError, "apply_rope_3d: argument 'x' must be a tensor (..., H, D)")
    h = x.shape[-2]
    return qk_norm_rope(x.flatten(-2), None, positions, h, sections=sections, bases=bases,
                        interleaved=interleaved, normalize=False)
