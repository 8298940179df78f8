"""J-DiT (LaVin-DiT's joint diffusion transformer) on lavin_fast's fused ops, with drop-in classes
carrying the released names (Attention, Block, FinalLayer, RotaryEmbedding3D, TimestepEmbedder)."""

from lavin_fast.models.jdit.attention import Attention
from lavin_fast.models.jdit.block import Block
from lavin_fast.models.jdit.layers import FinalLayer, SwiGLU, TimestepEmbedder
from lavin_fast.models.jdit.layout import JointLayout
from lavin_fast.models.jdit.model import LaVinDiT
from lavin_fast.rope import RotaryEmbedding3D  # the drop-in 3-D RoPE under the released name

__all__ = ["Attention", "Block", "FinalLayer", "JointLayout", "LaVinDiT", "RotaryEmbedding3D", "SwiGLU",
           "TimestepEmbedder"]
