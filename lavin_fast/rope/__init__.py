"""Fused QK RMSNorm + 3-D RoPE (csrc/rope), position helpers and drop-in modules."""

from lavin_fast.rope.modules import QKNormRoPE, RotaryEmbedding3D
from lavin_fast.rope.ops import apply_rope_3d, qk_norm_rope
from lavin_fast.rope.positions import grid_positions, joint_positions, packed_grid_positions

__all__ = ["QKNormRoPE", "RotaryEmbedding3D", "apply_rope_3d", "grid_positions", "joint_positions",
           "packed_grid_positions", "qk_norm_rope"]
