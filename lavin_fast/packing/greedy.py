"""Greedy packing of samples into sequences of at most `budget` tokens, and the padding it costs."""


def greedy_pack(lengths, budget):
    """First-fit decreasing: lists of sample indices whose lengths sum to at most `budget` each.

    Deterministic (ties keep input order). A sample longer than the budget is an error."""
    for i, n in enumerate(lengths):
        if n > budget:
            raise ValueError(f"greedy_pack: sample {i} has {n} tokens, more than budget={budget}")
        if n < 0:
            raise ValueError(f"greedy_pack: sample {i} has a negative length {n}")
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
    bin."""
    total = sum(lengths)
    if not lengths:
        return 0.0
    if bins is None:
        computed = len(lengths) * max(lengths)
    else:
        sums = [sum(lengths[i] for i in b) for b in bins]
        computed = len(bins) * (budget if budget is not None else max(sums))
    return 1.0 - total / computed if computed else 0.0
