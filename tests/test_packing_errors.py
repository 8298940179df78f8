"""Bad input to the packing helpers gives a clear error naming the argument and the expected value:
negative lengths, totals that int32 offsets cannot hold (>= 2^31), inconsistent offsets and shapes."""

import pytest
import torch

from lavin_fast.packing import (Packed, cu_seqlens_of, drop_tokens, greedy_pack, grid_positions, joint_positions,
                                masked_mean_pool, pack, packed_grid_positions, padding_fraction,
                                sample_drop_rates, unpack)

BIG = 2**31


def test_cu_seqlens_of_rejects_negative_and_overflowing_lengths():
    with pytest.raises(ValueError, match=r"cu_seqlens_of: argument 'lengths'\[1\] must be >= 0, got -2"):
        cu_seqlens_of([3, -2, 4])
    with pytest.raises(ValueError, match=r"'lengths' must sum to < 2\^31 = 2147483648.*got 2147483648"):
        cu_seqlens_of([2**30, 2**30])
    with pytest.raises(TypeError, match=r"'lengths'\[0\] must be an integer, got float"):
        cu_seqlens_of([2.5])
    assert cu_seqlens_of([3, 0, torch.tensor(4)]).tolist() == [0, 3, 3, 7]
    assert cu_seqlens_of([BIG - 1]).tolist() == [0, BIG - 1]


def test_grid_positions_reject_negative_and_overflowing_grids():
    with pytest.raises(ValueError, match=r"grid_positions: argument 'H' must be >= 0, got -1"):
        grid_positions(2, -1, 3)
    with pytest.raises(ValueError, match=r"T \* H \* W must be < 2\^31.*got 2048 \* 1024 \* 1024 = 2147483648"):
        grid_positions(2**11, 2**10, 2**10)
    with pytest.raises(ValueError, match=r"packed_grid_positions: argument 'shapes'\[1\] must be 3 integers"):
        packed_grid_positions([(1, 2, 3), (1, 2)])
    with pytest.raises(ValueError, match=r"packed_grid_positions: argument 'shapes'\[0\] must hold sizes >= 0"):
        packed_grid_positions([(1, -2, 3)])
    with pytest.raises(ValueError, match=r"'shapes' must hold < 2\^31 tokens in all.*got 2147483648"):
        packed_grid_positions([(2**10, 2**10, 2**10)] * 2)
    with pytest.raises(ValueError, match=r"joint_positions: argument 'T_x' must be >= 0, got -1"):
        joint_positions(2, -1, 4, 4)


def test_pack_rejects_overflow_and_mixed_dtypes():
    huge = torch.zeros(1, 1, 1, 1).expand(2**11, 2**10, 2**10, 1)  # 2^31 tokens, no memory
    with pytest.raises(ValueError, match=r"pack: the samples hold 2147483648 tokens.*< 2\^31"):
        pack([huge])
    with pytest.raises(ValueError, match=r"pack: sample 1 has dtype float64 on cpu, sample 0 has float32 on cpu"):
        pack([torch.zeros(2, 2, 3), torch.zeros(2, 2, 3, dtype=torch.float64)])


def _packed():
    return pack([torch.randn(2, 3, 4), torch.randn(1, 2, 2, 4)])  # lengths 6, 4


def test_unpack_and_drop_tokens_reject_inconsistent_packings():
    p = _packed()
    bad = Packed(p.tokens, torch.tensor([0, 6, 9], dtype=torch.int32), p.positions, p.shapes, 6)
    with pytest.raises(ValueError, match=r"'cu_seqlens' must end at 10 \(the rows of 'tokens'\), got 9"):
        drop_tokens(bad, 0.5)
    wrong_shapes = Packed(p.tokens, p.cu_seqlens, p.positions, [(1, 2, 3), (1, 1, 4)], 6)
    with pytest.raises(ValueError, match=r"unpack: sample 0 has 6 tokens in 'cu_seqlens' but its shape "
                                         r"\(1, 2, 2\) holds 4"):
        unpack(p.tokens, Packed(p.tokens, p.cu_seqlens, p.positions, [(1, 2, 2), (1, 2, 2)], 6))
    with pytest.raises(ValueError, match=r"'positions' must have shape \(10, 3\)"):
        drop_tokens(Packed(p.tokens, p.cu_seqlens, p.positions[:9], p.shapes, 6), 0.5)
    assert unpack(p.tokens, wrong_shapes)[1].shape == (1, 1, 4, 4)  # same token counts: accepted


@pytest.mark.parametrize("cu,pattern", [
    ([0, 6, 5], r"'cu_seqlens' must be non-decreasing.*cu_seqlens\[2\] = 5 < cu_seqlens\[1\] = 6"),
    ([1, 6, 10], r"'cu_seqlens' must start at 0, got 1"),
    ([0, 6, 11], r"'cu_seqlens' must end at 10 \(the rows of 'tokens'\), got 11"),
    ([0, -3, 10], r"'cu_seqlens' must be non-decreasing"),
    ([], r"'cu_seqlens' must have shape \(S \+ 1,\)"),
])
def test_masked_mean_pool_rejects_inconsistent_offsets(cu, pattern):
    tokens = torch.randn(10, 4)
    with pytest.raises(ValueError, match=r"masked_mean_pool: argument " + pattern):
        masked_mean_pool(tokens, torch.tensor(cu, dtype=torch.int32))


def test_masked_mean_pool_rejects_bad_shapes_and_dtypes():
    p = _packed()
    with pytest.raises(TypeError, match=r"'cu_seqlens' must have an integer dtype, got torch.float32"):
        masked_mean_pool(p.tokens, p.cu_seqlens.float())
    with pytest.raises(ValueError, match=r"'cu_seqlens' must have shape \(S \+ 1,\).*got \(1, 3\)"):
        masked_mean_pool(p.tokens, p.cu_seqlens[None])
    with pytest.raises(ValueError, match=r"'tokens' must have shape \(N, C\), got \(10,\)"):
        masked_mean_pool(p.tokens[:, 0], p.cu_seqlens)
    with pytest.raises(ValueError, match=r"'mask' must have shape \(N,\) = \(10,\), got \(9,\)"):
        masked_mean_pool(p.tokens, p.cu_seqlens, torch.ones(9, dtype=torch.bool))


def test_greedy_pack_and_padding_fraction_reject_bad_input():
    with pytest.raises(ValueError, match=r"greedy_pack: argument 'lengths'\[1\] must be >= 0, got -5"):
        greedy_pack([3, -5], 10)
    with pytest.raises(ValueError, match=r"greedy_pack: argument 'budget' must be in \[1, 2\^31\)"):
        greedy_pack([3], 0)
    with pytest.raises(ValueError, match=r"greedy_pack: argument 'budget' must be in \[1, 2\^31\)"):
        greedy_pack([3], BIG)
    with pytest.raises(ValueError, match=r"padding_fraction: argument 'lengths'\[0\] must be >= 0"):
        padding_fraction([-1, 4])
    with pytest.raises(ValueError, match=r"padding_fraction: argument 'bins' must hold each index in "
                                         r"\[0, 2\) exactly once"):
        padding_fraction([1, 4], [[0], [2]])
    with pytest.raises(ValueError, match=r"padding_fraction: argument 'bins' must hold each index"):
        padding_fraction([1, 4], [[0, 1], [1]])
    with pytest.raises(ValueError, match=r"padding_fraction: bin 0 holds 5 tokens, more than budget=4"):
        padding_fraction([1, 4], [[0, 1]], budget=4)


def test_sample_drop_rates_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"'num_samples' must be >= 0, got -1"):
        sample_drop_rates(-1)
    with pytest.raises(ValueError, match=r"'max_rate' must be in \[0, 1\], got 1.5"):
        sample_drop_rates(3, max_rate=1.5)
