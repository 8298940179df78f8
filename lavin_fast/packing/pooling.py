"""Per-sample pooling over packed tokens (NaViT's masked pooling)."""

import torch


def masked_mean_pool(tokens, cu_seqlens, mask=None):
    """Mean of each sample's tokens: tokens (N, C), cu_seqlens (S + 1,) -> (S, C).

    mask (N,) bool keeps only the marked tokens (e.g. not dropped); a sample with no kept token
    pools to zeros."""
    n = tokens.shape[0]
    if cu_seqlens[-1].item() != n:
        raise ValueError(f"masked_mean_pool: cu_seqlens ends at {cu_seqlens[-1].item()}, tokens has {n} rows")
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).long()
    seg = torch.repeat_interleave(torch.arange(lengths.numel(), device=tokens.device), lengths, output_size=n)
    w = torch.ones(n, dtype=tokens.dtype, device=tokens.device) if mask is None else mask.to(tokens.dtype)
    sums = torch.zeros(lengths.numel(), tokens.shape[1], dtype=tokens.dtype, device=tokens.device)
    sums.index_add_(0, seg, tokens * w[:, None])
    counts = torch.zeros(lengths.numel(), dtype=tokens.dtype, device=tokens.device).index_add_(0, seg, w)
    return sums / counts.clamp_min(1)[:, None]
