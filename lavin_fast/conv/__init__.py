"""Causal 3-D convolution (video VAEs) without the padded copy, with streaming caches."""

from lavin_fast.conv.modules import CausalConv3d
from lavin_fast.conv.ops import causal_conv3d

__all__ = ["CausalConv3d", "causal_conv3d"]
