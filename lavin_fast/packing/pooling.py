"""Per-sample pooling over packed tokens (NaViT's masked pooling)."""

import torch

from lavin_fast.packing.checks import check_offsets


def masked_mean_pool(tokens, cu_seqlens, mask=None):
    """Mean of each sample's tokens: tokens (N, C), cu_seqlens (S + 1,) -> (S, C).

    mask (N,) bool keeps only the marked tokens (e.g. not dropped); a sample with no kept token
    pools to zeros."""
    fn = "masked_mean_pool"
    if not isinstance(tokens, torch.Tensor) or tokens.dim() != 2:
        got = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
        raise ValueError(f"{fn}: argument 'tokens' must have shape (N, C), got {got}")
    n = tokens.shape[0]
    check_offsets(fn, cu_seqlens, n)
    if mask is not None and (not isinstance(mask, torch.Tensor) or tuple(mask.shape) != (n,)):
        got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
        raise ValueError(f"{fn}: argument 'mask' must have shape (N,) = ({n},), got {got}")
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).long().to(tokens.device)
    seg = torch.repeat_interleave(torch.arange(lengths.numel(), device=tokens.device), lengths, output_size=n)
    w = torch.ones(n, dtype=tokens.dtype, device=tokens.device) if mask is None else mask.to(tokens)
    sums = torch.zeros(lengths.numel(), tokens.shape[1], dtype=tokens.dtype, device=tokens.device)
    sums.index_add_(0, seg, tokens * w[:, None])
    counts = torch.zeros(lengths.numel(), dtype=tokens.dtype, device=tokens.device).index_add_(0, seg, w)
    return sums / counts.clamp_min(1)[:, None]
