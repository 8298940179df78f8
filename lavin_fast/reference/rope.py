"""Reference QK RMSNorm + 3-D RoPE (see lavin_fast.rope for the shapes and conventions).

Computes in float64 when given float64, else in float32 (as the kernels do). ``release_cos_sin=True``
follows the released LaVin-DiT instead: cos/sin computed in fp32 and cast to the activation dtype, the
norm's result cast to the activation dtype before the weight, and the rotation done in that dtype.
"""

import torch

# The default split (a convention, not arithmetic) is the product's: shared, not restated.
from lavin_fast.rope.ops import default_sections


def _compute_dtype(dtype):
    return torch.promote_types(dtype, torch.float32)


def _bases(bases):
    if isinstance(bases, (int, float)):
        return [float(bases)] * 3
    bases = [float(b) for b in bases]
    return bases * 3 if len(bases) == 1 else bases


def inv_freq(section, base, dtype=torch.float64):
    """base^(-2i / section) for i < section / 2."""
    i = torch.arange(0, section, 2, dtype=torch.float64)
    return (base ** (-i / section)).to(dtype)


def release_inv_freq(section, base):
    """inv_freq as RoPE code usually writes it, in fp32 throughout:
    ``1 / base ** (arange(0, section, 2).float() / section)`` (may differ from the correctly rounded
    value by an ulp; the release's exact expression is not available, this is the common one)."""
    return 1.0 / (base ** (torch.arange(0, section, 2, dtype=torch.float32) / section))


def rope_angles(positions, sections, bases=10000.0, dtype=torch.float64, release=False):
    """Angles of every (token, pair): a list over the three axes of (..., section / 2) tensors."""
    out = []
    for axis, (s, b) in enumerate(zip(sections, _bases(bases))):
        f = release_inv_freq(s, b) if release else inv_freq(s, b, dtype)
        out.append(positions[..., axis].to(dtype).unsqueeze(-1) * f)
    return out


def apply_rope_3d(x, positions, sections=None, bases=10000.0, interleaved=False, release_cos_sin=False):
    """x (..., H, D), positions (..., 3) integers (t, h, w) -> x rotated per head.

    Section a takes columns [off_a, off_a + s_a) of every head; in it pair i rotates by
    pos[a] * base_a^(-2i / s_a): rotate-half pairs column i with column i + s_a / 2 (LaVin-DiT),
    interleaved pairs columns 2i and 2i + 1 (CogVideoX / HunyuanVideo style).
    """
    d = x.shape[-1]
    sections = list(sections) if sections is not None else default_sections(d)
    if release_cos_sin:
        c, angle_dtype = x.dtype, torch.float32
    else:
        c = _compute_dtype(x.dtype)
        angle_dtype = c
    xc = x.to(c)
    pos = positions.unsqueeze(-2)  # (..., 1, 3): broadcast over heads
    parts, off = [], 0
    for s, ang in zip(sections, rope_angles(pos, sections, bases, angle_dtype, release_cos_sin)):
        part = xc[..., off:off + s]
        cos, sin = ang.cos().to(c), ang.sin().to(c)
        if interleaved:
            x1, x2 = part[..., 0::2], part[..., 1::2]
            parts.append(torch.stack((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1).flatten(-2))
        else:
            h = s // 2
            x1, x2 = part[..., :h], part[..., h:]
            cos2, sin2 = torch.cat((cos, cos), -1), torch.cat((sin, sin), -1)
            # x * cos + rotate_half(x) * sin, rotate_half(x) = (-x2, x1)
            parts.append(part * cos2 + torch.cat((-x2, x1), -1) * sin2)
        off += s
    return torch.cat(parts, -1).to(x.dtype)


def qk_norm_rope(x, weight, positions, num_heads, eps=1e-6, sections=None, bases=10000.0, interleaved=False,
                 normalize=True, release_cos_sin=False):
    """x (..., W) -> y (..., num_heads, W / num_heads): RMSNorm over all W (weight (W,) over the full
    projected width, as LaVin-DiT), split into heads, then 3-D RoPE per head."""
    if release_cos_sin:
        n = x
        if normalize:
            xf = x.float()
            n = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)
        if weight is not None:
            n = n * weight.to(x.dtype)
    else:
        c = _compute_dtype(x.dtype)
        n = x.to(c)
        if normalize:
            n = n * torch.rsqrt(n.pow(2).mean(-1, keepdim=True) + eps)
        if weight is not None:
            n = n * weight.to(c)
    y = n.unflatten(-1, (num_heads, x.shape[-1] // num_heads))
    return apply_rope_3d(y, positions, sections, bases, interleaved, release_cos_sin).to(x.dtype)
