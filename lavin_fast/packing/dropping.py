"""Per-sample token dropping with continuous rates (NaViT): each sample keeps a random subset of
round((1 - rate) * n) of its tokens (at least one), with its positions, so the model still knows
where the kept tokens sit."""

import torch

from lavin_fast._checks import as_count
from lavin_fast.packing.checks import check_packed
from lavin_fast.packing.pack import Packed, cu_seqlens_of


def sample_drop_rates(num_samples, max_rate=0.5, generator=None, beta=None):
    """Continuous rates in [0, max_rate): uniform, or Beta(a, b)-distributed with beta=(a, b)."""
    num_samples = as_count("sample_drop_rates", "'num_samples'", num_samples)
    if not 0.0 <= max_rate <= 1.0:
        raise ValueError(f"sample_drop_rates: argument 'max_rate' must be in [0, 1], got {max_rate}")
    if beta is None:
        u = torch.rand(num_samples, generator=generator, dtype=torch.float64)
    else:
        # torch.distributions takes no generator: Beta rates come from the global RNG.
        u = torch.distributions.Beta(*beta).sample((num_samples,)).double()
    return (u * max_rate).tolist()


def drop_tokens(packed, rates, generator=None):
    """Packed, per-sample rates in [0, 1) -> (Packed with the kept tokens, keep index (N_kept,) int64
    into the original rows). Kept tokens stay in their original order."""
    sizes = check_packed("drop_tokens", packed)
    if isinstance(rates, (int, float)):
        rates = [float(rates)] * len(sizes)
    rates = [float(r) for r in rates]
    if len(rates) != len(sizes):
        raise ValueError(f"drop_tokens: {len(rates)} rates for {len(sizes)} samples")
    for i, r in enumerate(rates):
        if not 0.0 <= r < 1.0:
            raise ValueError(f"drop_tokens: rate {i} must be in [0, 1), got {r}")
    keep, lengths = [], []
    starts = packed.cu_seqlens.tolist()
    for s, r in enumerate(rates):
        n = sizes[s]
        k = max(1, round((1.0 - r) * n)) if n else 0
        idx = torch.randperm(n, generator=generator)[:k].sort().values + starts[s]
        keep.append(idx)
        lengths.append(k)
    keep = (torch.cat(keep) if keep else torch.empty(0, dtype=torch.int64)).to(packed.tokens.device)
    out = Packed(packed.tokens.index_select(0, keep), cu_seqlens_of(lengths, packed.tokens.device),
                 packed.positions.index_select(0, keep), list(packed.shapes), max(lengths, default=0))
    return out, keep
