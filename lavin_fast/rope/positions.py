"""Per-token integer positions (t, h, w) for 3-D RoPE, int32 (N, 3), in token order.

Tokens follow the patchify order ``B C F (H p) (W p) -> B (F H W) (p p C)``: frame-major, then row,
then column.
"""

import torch


def grid_positions(T, H, W, device=None):
    """The (T, H, W) grid, t slowest: row n = (n // (H W), (n // W) % H, n % W)."""
    t = torch.arange(T, dtype=torch.int32, device=device)
    h = torch.arange(H, dtype=torch.int32, device=device)
    w = torch.arange(W, dtype=torch.int32, device=device)
    return torch.stack(torch.meshgrid(t, h, w, indexing="ij"), dim=-1).reshape(-1, 3)


def packed_grid_positions(shapes, device=None):
    """Packed samples (NaViT): the grids of [(T, H, W), ...] one after the other; each starts at 0."""
    grids = [grid_positions(T, H, W, device) for T, H, W in shapes]
    return torch.cat(grids) if grids else torch.empty(0, 3, dtype=torch.int32, device=device)


def joint_positions(T_cond, T_x, H, W, device=None):
    """LaVin-DiT's joint sequence: condition frames first, then the target frames, as T_cond + T_x frames
    of one H x W grid: t is the frame index over the joint sequence, h and w restart at 0 each frame."""
    return grid_positions(T_cond + T_x, H, W, device)
