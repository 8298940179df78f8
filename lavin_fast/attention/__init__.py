"""Varlen (packed, NaViT-style) GQA attention with causal, frame block-causal and block-sparse tile
masks, forward and backward; plus FlashAttention's flash_attn_varlen_func signature."""

from lavin_fast.attention.flash_compat import flash_attn_varlen_func
from lavin_fast.attention.ops import varlen_attention
from lavin_fast.attention.tile_mask import TileMask

__all__ = ["TileMask", "flash_attn_varlen_func", "varlen_attention"]
