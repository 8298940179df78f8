"""Argument checks shared by the packing helpers: offsets are int32 (the kernels' cu_seqlens), so every
length is >= 0 and every total < 2^31, and offsets must agree with the tensors they describe."""

import torch

from lavin_fast._checks import INT32_LIMIT, as_count


def check_counts(fn, values, name):
    """-> values as a list of ints, each >= 0."""
    return [as_count(fn, f"'{name}'[{i}]", n) for i, n in enumerate(values)]


def check_lengths(fn, lengths, name="lengths"):
    """-> lengths of one packed sequence as a list of ints, each >= 0, summing to < 2^31."""
    out = check_counts(fn, lengths, name)
    if sum(out) >= INT32_LIMIT:
        raise ValueError(f"{fn}: argument '{name}' must sum to < 2^31 = {INT32_LIMIT} (int32 offsets), got {sum(out)}")
    return out


def check_offsets(fn, cu_seqlens, rows, rows_of="the rows of 'tokens'"):
    """cu_seqlens: (S + 1,) integer tensor from 0, non-decreasing, ending at `rows` (unless None).
    -> its values (a list)."""
    if not isinstance(cu_seqlens, torch.Tensor):
        raise TypeError(f"{fn}: argument 'cu_seqlens' must be a tensor, got {type(cu_seqlens).__name__}")
    if cu_seqlens.dtype.is_floating_point or cu_seqlens.dtype.is_complex or cu_seqlens.dtype == torch.bool:
        raise TypeError(f"{fn}: argument 'cu_seqlens' must have an integer dtype, got {cu_seqlens.dtype}")
    if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 1:
        raise ValueError(f"{fn}: argument 'cu_seqlens' must have shape (S + 1,) with S >= 0, got "
                         f"{tuple(cu_seqlens.shape)}")
    cu = cu_seqlens.tolist()
    if cu[0] != 0:
        raise ValueError(f"{fn}: argument 'cu_seqlens' must start at 0, got {cu[0]}")
    for i in range(1, len(cu)):
        if cu[i] < cu[i - 1]:
            raise ValueError(f"{fn}: argument 'cu_seqlens' must be non-decreasing, got cu_seqlens[{i}] = {cu[i]} < "
                             f"cu_seqlens[{i - 1}] = {cu[i - 1]}")
    if rows is not None and cu[-1] != rows:
        raise ValueError(f"{fn}: argument 'cu_seqlens' must end at {rows} ({rows_of}), got {cu[-1]}")
    return cu


def check_packed(fn, packed):
    """A Packed whose offsets, positions and shapes agree with its tokens. -> the sample lengths."""
    tokens = packed.tokens
    if not isinstance(tokens, torch.Tensor) or tokens.dim() < 1:
        raise ValueError(f"{fn}: 'tokens' must be a tensor (N, ...)")
    n = tokens.shape[0]
    cu = check_offsets(fn, packed.cu_seqlens, n)
    if tuple(packed.positions.shape) != (n, 3):
        raise ValueError(f"{fn}: argument 'positions' must have shape ({n}, 3) (one (t, h, w) per token), got "
                         f"{tuple(packed.positions.shape)}")
    lengths = [b - a for a, b in zip(cu[:-1], cu[1:])]
    if len(packed.shapes) != len(lengths):
        raise ValueError(f"{fn}: 'shapes' must have one (T, H, W) per sample of 'cu_seqlens' ({len(lengths)}), "
                         f"got {len(packed.shapes)}")
    return lengths
