"""lavin_fast.packing: pack/unpack, positions, greedy packing, pooling, token dropping, padding."""

import pytest
import torch

from lavin_fast.packing import (drop_tokens, greedy_pack, masked_mean_pool, pack, padding_fraction,
                                sample_drop_rates, unpack)

SHAPES = [(1, 4, 4), (3, 2, 5), (1, 1, 1), (2, 7, 3)]


def _samples(c=6):
    return [torch.randn(*s, c) for s in SHAPES]


def test_pack_layout_and_positions():
    xs = _samples()
    p = pack(xs)
    lengths = [t * h * w for t, h, w in SHAPES]
    assert p.cu_seqlens.dtype == torch.int32 and p.cu_seqlens.tolist() == [0, 16, 46, 47, 89]
    assert p.max_seqlen == max(lengths) and p.tokens.shape == (sum(lengths), 6)
    assert p.positions.dtype == torch.int32 and p.positions.shape == (sum(lengths), 3)
    # Token r of sample 1 is frame t, row h, column w of its grid, and carries that position.
    start = 16
    for r in (0, 9, 10, 29):
        t, h, w = p.positions[start + r].tolist()
        assert (t, h, w) == (r // 10, (r % 10) // 5, r % 5)
        torch.testing.assert_close(p.tokens[start + r], xs[1][t, h, w])


def test_pack_accepts_images_and_unpack_inverts():
    xs = [torch.randn(3, 5, 4), torch.randn(2, 3, 5, 4)]
    p = pack(xs)
    assert p.shapes == [(1, 3, 5), (2, 3, 5)]
    back = unpack(p.tokens, p)
    torch.testing.assert_close(back[0][0], xs[0])
    torch.testing.assert_close(back[1], xs[1])
    # Model outputs of another width unpack too.
    out = unpack(torch.randn(p.tokens.shape[0], 2), p)
    assert out[1].shape == (2, 3, 5, 2)


def test_pack_errors():
    with pytest.raises(ValueError, match="sample 1 has 3 channels"):
        pack([torch.randn(2, 2, 4), torch.randn(2, 2, 3)])
    with pytest.raises(ValueError, match=r"sample 0 must be a tensor \(H, W, C\)"):
        pack([torch.randn(4)])
    with pytest.raises(ValueError, match="unpack: tokens has 3 rows"):
        unpack(torch.randn(3, 2), pack([torch.randn(2, 2, 1)]))


def test_greedy_pack_respects_budget_and_covers_every_sample():
    lengths = [1024, 576, 256, 1024, 100, 900, 1, 300]
    bins = greedy_pack(lengths, budget=1300)
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 1300 for b in bins)
    assert len(bins) == 4  # the lower bound ceil(4181 / 1300) = 4: first-fit decreasing reaches it
    with pytest.raises(ValueError, match="sample 0 has 2000 tokens, more than budget=1300"):
        greedy_pack([2000], 1300)


def test_padding_fraction():
    lengths = [1024, 576, 256]
    assert padding_fraction(lengths) == pytest.approx(1 - 1856 / 3072)
    assert padding_fraction(lengths, [[0], [1, 2]], budget=1024) == pytest.approx(1 - 1856 / 2048)
    assert padding_fraction(lengths, [[0, 1, 2]]) == 0.0


def test_masked_mean_pool():
    p = pack(_samples())
    pooled = masked_mean_pool(p.tokens, p.cu_seqlens)
    want = torch.stack([x.reshape(-1, 6).mean(0) for x in _unpacked(p)])
    torch.testing.assert_close(pooled, want)
    mask = torch.rand(p.tokens.shape[0]) > 0.5
    mask[p.cu_seqlens[2]] = False  # sample 2 (one token) fully masked -> zeros
    pooled = masked_mean_pool(p.tokens, p.cu_seqlens, mask)
    for s in range(4):
        a, b = p.cu_seqlens[s].item(), p.cu_seqlens[s + 1].item()
        m = mask[a:b]
        want = p.tokens[a:b][m].mean(0) if m.any() else torch.zeros(6)
        torch.testing.assert_close(pooled[s], want)


def _unpacked(p):
    return unpack(p.tokens, p)


def test_drop_tokens_keeps_rates_positions_and_order():
    p = pack([torch.randn(2, 8, 8, 3), torch.randn(1, 6, 5, 3), torch.randn(1, 1, 1, 3)])
    g = torch.Generator().manual_seed(0)
    rates = [0.25, 0.5, 0.9]
    d, keep = drop_tokens(p, rates, generator=g)
    assert d.lengths == [96, 15, 1]  # round((1 - r) n), at least one token
    assert d.cu_seqlens.dtype == torch.int32 and d.max_seqlen == 96
    torch.testing.assert_close(d.tokens, p.tokens[keep])
    assert torch.equal(d.positions, p.positions[keep])
    starts = p.cu_seqlens.tolist()
    for s in range(3):  # kept rows stay inside their sample, in order, without repeats
        k = keep[d.cu_seqlens[s]:d.cu_seqlens[s + 1]]
        assert (k >= starts[s]).all() and (k < starts[s + 1]).all() and (k.diff() > 0).all()
    d2, keep2 = drop_tokens(p, rates, generator=torch.Generator().manual_seed(0))
    assert torch.equal(keep, keep2)
    with pytest.raises(ValueError, match=r"rate 1 must be in \[0, 1\)"):
        drop_tokens(p, [0.1, 1.0, 0.0])


def test_sample_drop_rates_continuous():
    r = sample_drop_rates(1000, max_rate=0.5, generator=torch.Generator().manual_seed(1))
    assert all(0 <= x < 0.5 for x in r) and len(set(r)) == 1000
    rb = sample_drop_rates(200, max_rate=0.8, beta=(2.0, 5.0))
    assert all(0 <= x < 0.8 for x in rb)
