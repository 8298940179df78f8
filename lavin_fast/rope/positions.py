"""Per-token integer positions (t, h, w) for 3-D RoPE, int32 (N, 3), in token order.

Tokens follow the patchify order ``B C F (H p) (W p) -> B (F H W) (p p C)``: frame-major, then row,
then column. Grids hold < 2^31 tokens in all (int32 positions and offsets).
"""

import operator

import torch

from lavin_fast._checks import INT32_LIMIT, as_count


def _size(fn, name, v):
    return as_count(fn, f"'{name}'", v)


def _grid(fn, T, H, W, device):
    T, H, W = _size(fn, "T", T), _size(fn, "H", H), _size(fn, "W", W)
    if T * H * W >= INT32_LIMIT:
        raise ValueError(f"{fn}: the grid's T * H * W must be < 2^31 = {INT32_LIMIT} (int32 positions), got "
                         f"{T} * {H} * {W} = {T * H * W}")
    t = torch.arange(T, dtype=torch.int32, device=device)
    h = torch.arange(H, dtype=torch.int32, device=device)
    w = torch.arange(W, dtype=torch.int32, device=device)
    return torch.stack(torch.meshgrid(t, h, w, indexing="ij"), dim=-1).reshape(-1, 3)


def grid_positions(T, H, W, device=None):
    """The (T, H, W) grid, t slowest: row n = (n // (H W), (n // W) % H, n % W)."""
    return _grid("grid_positions", T, H, W, device)


def packed_grid_positions(shapes, device=None):
    """Packed samples (NaViT): the grids of [(T, H, W), ...] one after the other; each starts at 0."""
    fn = "packed_grid_positions"
    sizes = []
    for i, s in enumerate(shapes):
        try:
            dims = [operator.index(v) for v in s]
        except TypeError:
            dims = None
        if dims is None or len(dims) != 3:
            raise ValueError(f"{fn}: argument 'shapes'[{i}] must be 3 integers (T, H, W), got {s!r}")
        if min(dims) < 0:
            raise ValueError(f"{fn}: argument 'shapes'[{i}] must hold sizes >= 0, got {tuple(dims)}")
        sizes.append(dims)
    total = sum(t * h * w for t, h, w in sizes)
    if total >= INT32_LIMIT:
        raise ValueError(f"{fn}: argument 'shapes' must hold < 2^31 tokens in all (int32 positions and offsets), "
                         f"got {total}")
    grids = [_grid(fn, T, H, W, device) for T, H, W in sizes]
    return torch.cat(grids) if grids else torch.empty(0, 3, dtype=torch.int32, device=device)


def joint_positions(T_cond, T_x, H, W, device=None):
    """LaVin-DiT's joint sequence: condition frames first, then the target frames, as T_cond + T_x frames
    of one H x W grid: t is the frame index over the joint sequence, h and w restart at 0 each frame."""
    fn = "joint_positions"
    return _grid(fn, _size(fn, "T_cond", T_cond) + _size(fn, "T_x", T_x), H, W, device)
