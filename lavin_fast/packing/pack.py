"""Pack token grids of any shape (images (H, W, C) or videos (T, H, W, C)) into one sequence."""

import math
from dataclasses import dataclass

import torch

from lavin_fast._checks import INT32_LIMIT, dtype_name
from lavin_fast.packing.checks import check_lengths, check_offsets
from lavin_fast.rope.positions import packed_grid_positions


def cu_seqlens_of(lengths, device=None):
    """(S + 1,) int32 offsets of segments of the given lengths (each >= 0, summing to < 2^31)."""
    lengths = check_lengths("cu_seqlens_of", lengths)
    out = torch.zeros(len(lengths) + 1, dtype=torch.int32)
    if lengths:
        out[1:] = torch.cumsum(torch.tensor(lengths, dtype=torch.int64), 0).to(torch.int32)
    return out.to(device)


@dataclass
class Packed:
    """tokens (N, C); cu_seqlens (S + 1,) int32; positions (N, 3) int32 (t, h, w), each sample starting
    at 0; shapes [(T, H, W)] per sample; max_seqlen the longest sample."""
    tokens: torch.Tensor
    cu_seqlens: torch.Tensor
    positions: torch.Tensor
    shapes: list
    max_seqlen: int

    @property
    def num_samples(self):
        return len(self.shapes)

    @property
    def lengths(self):
        return (self.cu_seqlens[1:] - self.cu_seqlens[:-1]).tolist()


def _grid(x, i):
    if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4):
        got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"pack: sample {i} must be a tensor (H, W, C) or (T, H, W, C), got {got}")
    return x if x.dim() == 4 else x.unsqueeze(0)


def pack(samples):
    """[(T, H, W, C) or (H, W, C)] -> Packed. All samples need the same C, dtype and device."""
    if not samples:
        raise ValueError("pack: need at least one sample")
    grids = [_grid(x, i) for i, x in enumerate(samples)]
    c, dtype, device = grids[0].shape[-1], grids[0].dtype, grids[0].device
    for i, g in enumerate(grids):
        if g.shape[-1] != c:
            raise ValueError(f"pack: sample {i} has {g.shape[-1]} channels, sample 0 has {c}")
        # torch.cat would promote dtypes silently (or fail without naming the sample)
        if g.dtype != dtype or g.device != device:
            raise ValueError(f"pack: sample {i} has dtype {dtype_name(g)} on {g.device}, "
                             f"sample 0 has {dtype_name(dtype)} on {device}")
    shapes = [tuple(g.shape[:3]) for g in grids]
    lengths = [t * h * w for t, h, w in shapes]
    # Checked before anything is allocated: offsets and positions are int32.
    if sum(lengths) >= INT32_LIMIT:
        raise ValueError(f"pack: the samples hold {sum(lengths)} tokens in all; int32 offsets need < 2^31 = "
                         f"{INT32_LIMIT}")
    device = grids[0].device
    return Packed(torch.cat([g.reshape(-1, c) for g in grids]), cu_seqlens_of(lengths, device),
                  packed_grid_positions(shapes).to(device), shapes, max(lengths))


def unpack(tokens, packed):
    """Packed tokens (N, ...) -> list of per-sample grids (T, H, W, ...), using packed's shapes.

    `tokens` may be the model's output for `packed` (any trailing width)."""
    if not isinstance(tokens, torch.Tensor) or tokens.dim() < 1:
        raise ValueError("unpack: argument 'tokens' must be a tensor (N, ...)")
    cu = check_offsets("unpack", packed.cu_seqlens, None)
    if tokens.shape[0] != cu[-1]:
        raise ValueError(f"unpack: tokens has {tokens.shape[0]} rows, the packing has {cu[-1]} (cu_seqlens[-1])")
    lengths = [b - a for a, b in zip(cu[:-1], cu[1:])]
    if len(packed.shapes) != len(lengths):
        raise ValueError(f"unpack: 'shapes' must have one (T, H, W) per sample of 'cu_seqlens' ({len(lengths)}), "
                         f"got {len(packed.shapes)}")
    for i, (n, s) in enumerate(zip(lengths, packed.shapes)):
        if math.prod(s) != n:
            raise ValueError(f"unpack: sample {i} has {n} tokens in 'cu_seqlens' but its shape {tuple(s)} holds "
                             f"{math.prod(s)}")
    pieces = torch.split(tokens, lengths)
    return [p.reshape(*s, *tokens.shape[1:]) for p, s in zip(pieces, packed.shapes)]
