"""NaViT-style packing: variable-resolution images and videos (latent token grids) as one token
sequence with cu_seqlens and (t, h, w) positions; greedy packing into a token budget; unpacking;
masked pooling; per-sample token dropping; padding fraction. The (t, h, w) position helpers are
lavin_fast.rope.positions' (the grids RoPE rotates by), offered here too."""

from lavin_fast.packing.dropping import drop_tokens, sample_drop_rates
from lavin_fast.packing.greedy import greedy_pack, padding_fraction
from lavin_fast.packing.pack import Packed, cu_seqlens_of, pack, unpack
from lavin_fast.packing.pooling import masked_mean_pool
from lavin_fast.rope.positions import grid_positions, joint_positions, packed_grid_positions

__all__ = ["Packed", "cu_seqlens_of", "drop_tokens", "greedy_pack", "grid_positions", "joint_positions",
           "masked_mean_pool", "pack", "packed_grid_positions", "padding_fraction", "sample_drop_rates",
           "unpack"]
