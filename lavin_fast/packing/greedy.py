"""Greedy packing of samples into sequences of at most `budget` tokens, and the padding it costs."""

import operator

from lavin_fast._checks import INT32_LIMIT
from lavin_fast.packing.checks import check_counts


def _budget(fn, budget):
    try:
        b = operator.index(budget)
    except TypeError:
        raise TypeError(f"{fn}: argument 'budget' must be an integer, got {type(budget).__name__}") from None
    if not 1 <= b < INT32_LIMIT:
        raise ValueError(f"{fn}: argument 'budget' must be in [1, 2^31) (a packed sequence has int32 offsets), "
                         f"got {b}")
    return b


def greedy_pack(lengths, budget):
    """First-fit decreasing: lists of sample indices whose lengths sum to at most `budget` each.

    Deterministic (ties keep input order). A sample longer than the budget is an error."""
    # Each bin is one packed sequence (< 2^31 tokens, through the budget); the total over bins is free.
    lengths = check_counts("greedy_pack", lengths, "lengths")
    budget = _budget("greedy_pack", budget)
    for i, n in enumerate(lengths):
        if n > budget:
            raise ValueError(f"greedy_pack: sample {i} has {n} tokens, more than budget={budget}")
    bins, room = [], []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        for b, r in enumerate(room):
            if lengths[i] <= r:
                bins[b].append(i)
                room[b] -= lengths[i]
                break
        else:
            bins.append([i])
            room.append(budget - lengths[i])
    return [sorted(b) for b in bins]


def padding_fraction(lengths, bins=None, budget=None):
    """Fraction of computed tokens that are padding.

    No bins: padding every sample to the longest (a padded batch). With bins and budget: sequences of
    `budget` tokens each (fixed-shape packed batches). With bins only: each bin padded to the longest
    bin. Bins must hold every sample index exactly once."""
    fn = "padding_fraction"
    lengths = check_counts(fn, lengths, "lengths")
    if not lengths:
        return 0.0
    total = sum(lengths)
    if bins is None:
        computed = len(lengths) * max(lengths)
    else:
        indices = sorted(i for b in bins for i in b)
        if indices != list(range(len(lengths))):
            raise ValueError(f"{fn}: argument 'bins' must hold each index in [0, {len(lengths)}) exactly once, "
                             f"got {[list(b) for b in bins]}")
        sums = [sum(lengths[i] for i in b) for b in bins]
        if budget is not None:
            budget = _budget(fn, budget)
            for k, s in enumerate(sums):
                if s > budget:
                    raise ValueError(f"{fn}: bin {k} holds {s} tokens, more than budget={budget}")
        computed = len(bins) * (budget if budget is not None else max(sums))
    return 1.0 - total / computed if computed else 0.0
