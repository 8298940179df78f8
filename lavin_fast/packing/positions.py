"""(t, h, w) token positions, int32 (N, 3), as the contract's rope helpers define them
(lavin_fast.rope.positions, used when that branch is present; the same functions are written out
here so packing works without it)."""

import torch

try:  # branch rope
    from lavin_fast.rope.positions import grid_positions, joint_positions, packed_grid_positions
except ImportError:
    def grid_positions(T, H, W):
        """Positions of a T x H x W token grid, frame-major then row-major."""
        t, h, w = torch.meshgrid(torch.arange(T, dtype=torch.int32), torch.arange(H, dtype=torch.int32),
                                 torch.arange(W, dtype=torch.int32), indexing="ij")
        return torch.stack([t, h, w], -1).reshape(-1, 3)

    def packed_grid_positions(shapes):
        """Concatenated grid positions of samples [(T, H, W), ...]; every sample starts at 0."""
        if not shapes:
            return torch.zeros(0, 3, dtype=torch.int32)
        return torch.cat([grid_positions(*s) for s in shapes])

    def joint_positions(T_cond, T_x, H, W):
        """LaVin-DiT's joint sequence [condition frames; target frames] on one H x W grid: t is the
        frame index over both streams, (h, w) restart every frame."""
        return grid_positions(T_cond + T_x, H, W)

__all__ = ["grid_positions", "joint_positions", "packed_grid_positions"]
