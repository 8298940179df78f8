"""Drop-in modules: 3-D RoPE for q and k, and the fused QK-norm + RoPE with a learned weight."""

import torch
from torch import nn

from lavin_fast.rope.ops import apply_rope_3d, default_sections, qk_norm_rope


def _sections(head_dim, sections):
    if sections is not None:
        sections = [int(s) for s in sections]
        if head_dim is not None and sum(sections) != head_dim:
            raise ValueError(f"sections {sections} must sum to head_dim = {head_dim}")
        return sections
    if head_dim is None:
        raise ValueError("RotaryEmbedding3D needs head_dim or sections")
    return default_sections(head_dim)


def _expand_positions(positions, x, name):
    """positions for x (..., H, D): x.shape[:-2] + (3,), or, for a padded batch (B, L, H, D), (L, 3)
    shared by every sample."""
    lead = x.shape[:-2]
    if positions.dim() == 2 and len(lead) == 2 and positions.shape[0] == lead[1]:
        return positions.unsqueeze(0).expand(*lead, 3)
    if tuple(positions.shape) != (*lead, 3):
        raise ValueError(f"RotaryEmbedding3D: argument 'positions' must have shape {(*lead, 3)} for {name} of shape "
                         f"{tuple(x.shape)} (or (L, 3) for a padded batch), got {tuple(positions.shape)}")
    return positions


class RotaryEmbedding3D(nn.Module):
    """3-D RoPE applied to q and k, from per-token integer positions (t, h, w).

    RotaryEmbedding3D(head_dim=72)                   # LaVin-DiT: 24/24/24, base 10000, rotate-half
    RotaryEmbedding3D(sections=(16, 56, 56), base=256, interleaved=True)   # HunyuanVideo-style
    q_rot, k_rot = rope(q, k, positions)

    q (..., H, D), k (..., H_kv, D): packed (total, H, D) with positions (total, 3), or padded
    (B, L, H, D) with positions (B, L, 3) or (L, 3). base: one value or one per axis. No parameters, no
    buffers (cos/sin are computed inside the kernel), so it adds nothing to a state dict.
    """

    def __init__(self, head_dim=None, sections=None, base=10000.0, interleaved=False):
        super().__init__()
        self.sections = _sections(head_dim, sections)
        self.head_dim = sum(self.sections)
        self.base = base if isinstance(base, (int, float)) else tuple(float(b) for b in base)
        self.interleaved = interleaved

    def rotate(self, x, positions):
        return apply_rope_3d(x, _expand_positions(positions, x, "x"), sections=self.sections, bases=self.base,
                             interleaved=self.interleaved)

    def forward(self, q, k, positions):
        return self.rotate(q, positions), self.rotate(k, positions)

    def extra_repr(self):
        return f"sections={self.sections}, base={self.base}, interleaved={self.interleaved}"


class QKNormRoPE(nn.Module):
    """LaVin-DiT's QK-norm (RMSNorm with a learned weight over the whole projected width) followed by 3-D
    RoPE, fused: x (..., num_heads * head_dim) -> (..., num_heads, head_dim). The parameter is `weight`
    (W,), so it loads the released `*_qnorm.weight` / `*_knorm.weight` tensors."""

    def __init__(self, width, num_heads, eps=1e-6, sections=None, base=10000.0, interleaved=False,
                 elementwise_affine=True, device=None, dtype=None):
        super().__init__()
        if width % num_heads:
            raise ValueError(f"num_heads = {num_heads} must divide width = {width}")
        self.num_heads, self.eps = num_heads, eps
        self.sections = _sections(width // num_heads, sections)
        self.base = base if isinstance(base, (int, float)) else tuple(float(b) for b in base)
        self.interleaved = interleaved
        self.weight = nn.Parameter(torch.ones(width, device=device, dtype=dtype)) if elementwise_affine else None

    def forward(self, x, positions):
        return qk_norm_rope(x, self.weight, positions, self.num_heads, eps=self.eps, sections=self.sections,
                            bases=self.base, interleaved=self.interleaved)
