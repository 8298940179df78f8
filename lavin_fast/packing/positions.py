"""(t, h, w) token positions, int32 (N, 3): lavin_fast.rope's helpers, re-exported for packing."""

from lavin_fast.rope.positions import grid_positions, joint_positions, packed_grid_positions

__all__ = ["grid_positions", "joint_positions", "packed_grid_positions"]
