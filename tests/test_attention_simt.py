"""The CUDA attention kernels (csrc/attention/attention_{fwd,bwd}_kernel.cuh) under the SIMT emulator,
against the float64 reference: forward, backward (atomic dQ and deterministic mode), every mask and
their combinations, GQA ratios 1/4/8, head dims 64/72/128, empty and length-1 segments, q and k of
different lengths. Each forward (and deterministic backward) runs under the emulator's three
schedules and must be bit-identical across them; outputs start poisoned (conftest). The emulator runs
threads as fibers, so sizes stay small (a few hundred tokens, few heads)."""

import math

import pytest
import torch

from helpers import GRAD_TOL, TOL, assert_bitwise_equal, cu_seqlens, randn, run_on
from lavin_fast import simt
from lavin_fast.attention import TileMask, varlen_attention
from lavin_fast.reference import attention as ref

_ops = torch.ops.lavin_fast

LQ = [70, 1, 0, 130, 3]
LK = [50, 3, 5, 130, 0]  # different from LQ; an empty key set makes fully masked rows


def make(dtype, D, H, H_kv, lq=LQ, lk=LK, *, causal=False, frames=False, tiles=False):
    q = randn(sum(lq), H, D, dtype=dtype)
    k = randn(sum(lk), H_kv, D, dtype=dtype)
    v = randn(sum(lk), H_kv, D, dtype=dtype)
    kw = dict(causal=causal)
    if frames:
        # Frames of ~24 tokens; queries start one frame lower than keys, so the first rows of a segment
        # see no key at all (out 0, lse -inf).
        kw["frame_ids_q"] = torch.cat([torch.arange(n, dtype=torch.int32) // 24 - 1 for n in lq])
        kw["frame_ids_k"] = torch.cat([torch.arange(n, dtype=torch.int32) // 24 for n in lk])
    if tiles:
        tq, tk = 32, 48  # not the kernels' 64 x 64: kernel tiles straddle mask tiles
        nq, nk = TileMask.num_tiles(max(lq), max(lk), tq, tk)
        m = torch.rand(len(lq), nq, nk) < 0.6
        m[:, :, 0] = True
        m[0, 1, :] = False  # rows 32..63 of segment 0 see nothing
        kw["tile_mask"] = TileMask(m, tq, tk)
    return (q, k, v, cu_seqlens(lq), cu_seqlens(lk), max(lq), max(lk)), kw


def reference(args, kw):
    q, k, v, *rest = args
    return ref.varlen_attention(q.double(), k.double(), v.double(), *rest, **kw)


def check_fwd(args, kw):
    dtype = args[0].dtype
    out, lse = run_on("simt", lambda: varlen_attention(*args, **kw))
    r_out, r_lse = reference(args, kw)
    torch.testing.assert_close(out.double(), r_out, **TOL[dtype])
    assert torch.equal(torch.isinf(lse), torch.isinf(r_lse)), "rows that see no key: lse = -inf"
    torch.testing.assert_close(lse.double().nan_to_num(neginf=0), r_lse.nan_to_num(neginf=0), rtol=1e-4, atol=1e-4)
    return out, lse


def bwd(args, kw, out, lse, g, deterministic):
    q, k, v, cq, ck, mq, mk = args
    tm = kw.get("tile_mask")
    return _ops.varlen_attention_backward(
        g, q, k, v, out, lse, None, cq, ck, mq, mk, kw.get("softmax_scale", 1 / math.sqrt(q.shape[-1])),
        kw.get("causal", False), kw.get("frame_ids_q"), kw.get("frame_ids_k"),
        None if tm is None else tm.mask, 0 if tm is None else tm.tile_q, 0 if tm is None else tm.tile_k,
        deterministic)


def check_grads(args, kw, grads, g):
    q, k, v, *rest = args
    leaves = [t.double().requires_grad_() for t in (q, k, v)]
    r_out, _ = ref.varlen_attention(*leaves, *rest, **kw)
    r_out.backward(g.double())
    for name, got, leaf in zip("qkv", grads, leaves):
        assert got.dtype == q.dtype and torch.isfinite(got).all(), f"grad_{name}: poisoned or non-finite"
        err = (got.double() - leaf.grad).abs().max().item()
        bound = GRAD_TOL[q.dtype] * max(leaf.grad.abs().max().item(), 1e-3)
        assert err <= bound, f"grad_{name}: max abs error {err:.3g} > {bound:.3g}"


# ---- forward: dtypes x head dims x GQA ratios ----

@pytest.mark.parametrize("dtype,D,group", [
    (torch.bfloat16, 64, 1), (torch.float16, 64, 4), (torch.bfloat16, 72, 8),
    (torch.float16, 72, 1), (torch.bfloat16, 128, 4), (torch.float16, 128, 8)],
    ids=["bf16-64-g1", "fp16-64-g4", "bf16-72-g8", "fp16-72-g1", "bf16-128-g4", "fp16-128-g8"])
def test_forward(dtype, D, group):
    args, kw = make(dtype, D, group, 1)
    check_fwd(args, kw)


MASKS = [dict(causal=True), dict(frames=True), dict(tiles=True), dict(causal=True, frames=True),
         dict(causal=True, tiles=True), dict(frames=True, tiles=True),
         dict(causal=True, frames=True, tiles=True)]


@pytest.mark.parametrize("masks", MASKS, ids=lambda m: "+".join(m))
def test_forward_masks(masks):
    dtype = torch.float16 if len(masks) == 2 else torch.bfloat16
    args, kw = make(dtype, 72, 4, 2, **masks)
    out, lse = check_fwd(args, kw)
    if "frames" in masks:
        dead = torch.isinf(lse)
        assert dead.any() and (out.transpose(0, 1)[dead] == 0).all(), "rows that see no key: out = 0"


@pytest.mark.parametrize("H,H_kv", [(6, 1), (6, 2)], ids=["g6-pack2", "g3-pack1"])
def test_forward_gqa_partly_packed(H, H_kv):
    # The forward packs the largest power-of-two divisor of the group into one block's rows.
    args, kw = make(torch.float16, 64, H, H_kv, lq=[40, 5], lk=[70, 2], causal=True)
    check_fwd(args, kw)


def test_forward_causal_longer_queries():
    # len_q > len_k: bottom-right alignment leaves the first len_q - len_k rows without keys.
    args, kw = make(torch.bfloat16, 64, 2, 1, lq=[100, 7], lk=[40, 9], causal=True)
    check_fwd(args, kw)


def test_forward_misaligned_rows():
    # q a view with rows 8 bytes off 16-byte alignment: the backend copies it before cp.async.
    (q, k, v, *rest), kw = make(torch.bfloat16, 64, 2, 1)
    wide = randn(q.shape[0], 2, 68, dtype=torch.bfloat16)
    wide[:, :, 4:] = q
    check_fwd((wide[:, :, 4:], k, v, *rest), kw)


def test_unsupported_head_dim_is_a_clear_error():
    args, kw = make(torch.bfloat16, 80, 1, 1)
    with simt.enabled(), pytest.raises(ValueError, match="64, 72 or 128"):
        varlen_attention(*args, **kw)


# ---- backward ----

@pytest.mark.parametrize("dtype,D,group,masks", [
    (torch.bfloat16, 64, 1, {}), (torch.float16, 72, 4, dict(causal=True)),
    (torch.bfloat16, 128, 8, dict(frames=True)), (torch.float16, 72, 2, dict(causal=True, frames=True, tiles=True))],
    ids=["bf16-64-g1", "fp16-72-g4-causal", "bf16-128-g8-frames", "fp16-72-g2-all"])
def test_backward_atomic(dtype, D, group, masks):
    # dQ by fp32 atomics: the sum order follows the schedule, so each schedule is checked on its own.
    args, kw = make(dtype, D, group, 1, **masks)
    out, lse = varlen_attention(*args, **kw)
    g = randn(*out.shape, dtype=dtype)
    for schedule in simt.SCHEDULES:
        with simt.enabled(schedule, seed=5):
            grads = bwd(args, kw, out, lse, g, deterministic=False)
        check_grads(args, kw, grads, g)


@pytest.mark.parametrize("dtype,D,group,masks", [
    (torch.bfloat16, 72, 4, dict(causal=True, tiles=True)), (torch.float16, 128, 2, dict(frames=True)),
    (torch.bfloat16, 64, 8, {})], ids=["bf16-72-g4-causal-tiles", "fp16-128-g2-frames", "bf16-64-g8"])
def test_backward_deterministic(dtype, D, group, masks):
    args, kw = make(dtype, D, group, 1, **masks)
    out, lse = run_on("simt", lambda: varlen_attention(*args, **kw))
    g = randn(*out.shape, dtype=dtype)
    grads = run_on("simt", lambda: bwd(args, kw, out, lse, g, deterministic=True))  # bitwise across schedules
    check_grads(args, kw, grads, g)
    with simt.enabled("random", seed=99):
        again = bwd(args, kw, out, lse, g, deterministic=True)
    assert_bitwise_equal(grads, again, "deterministic backward repeated")


def test_autograd_through_public_function():
    args, kw = make(torch.bfloat16, 72, 4, 2, lq=[33, 1], lk=[20, 65], causal=True)
    q, k, v, *rest = args
    leaves = [t.clone().requires_grad_() for t in (q, k, v)]
    with simt.enabled():
        out, _ = varlen_attention(*leaves, *rest, deterministic=True, **kw)
        g = randn(*out.shape, dtype=out.dtype)
        out.backward(g)
    check_grads(args, kw, [t.grad for t in leaves], g)


def test_max_seqlen_far_above_the_longest_segment():
    """max_seqlen is only an upper bound (2**31 - 1 is valid): the grids are bounded by the rows that
    exist, so the emulated launch stays small and the results equal those of the tight bound."""
    args, kw = make(torch.bfloat16, 64, 4, 2, lq=[20, 5, 0], lk=[9, 30, 4], causal=True)
    loose = (*args[:5], 2**31 - 1, 2**31 - 1)
    g = randn(args[0].shape[0], 4, 64, dtype=torch.bfloat16)
    with simt.enabled():
        for deterministic in (False, True):
            tight_out, tight_lse, _ = _ops.varlen_attention(*args, 0.125, True, None, None, None, 0, 0)
            out, lse, _ = _ops.varlen_attention(*loose, 0.125, True, None, None, None, 0, 0)
            assert_bitwise_equal((tight_out, tight_lse), (out, lse), "forward, max_seqlen 2**31 - 1")
            tight = _ops.varlen_attention_backward(g, *args[:3], out, lse, None, *args[3:], 0.125, True,
                                                   None, None, None, 0, 0, deterministic)
            grads = _ops.varlen_attention_backward(g, *args[:3], out, lse, None, *loose[3:], 0.125, True,
                                                   None, None, None, 0, 0, deterministic)
            if deterministic:
                assert_bitwise_equal(tight, grads, "backward, max_seqlen 2**31 - 1")
            else:  # dQ by float atomics: the order may differ
                for a, b in zip(tight, grads):
                    torch.testing.assert_close(a, b, **TOL[torch.bfloat16])


def test_more_segments_than_a_grid_dimension_holds():
    """Segments index grid z (at most 65535 per launch): 65535 + 3 segments, the last three (in a
    second launch) non-empty, match the same three segments alone."""
    lq, lk = [17, 1, 40], [5, 33, 40]
    args, kw = make(torch.bfloat16, 64, 2, 1, lq=lq, lk=lk, causal=True)
    q, k, v, cq, ck, mq, mk = args
    empty = torch.zeros(65535, dtype=torch.int32)
    many = (q, k, v, torch.cat([empty, cq]), torch.cat([empty, ck]), mq, mk)
    out, lse = run_on("simt", lambda: varlen_attention(*args, **kw))
    many_out, many_lse = run_on("simt", lambda: varlen_attention(*many, **kw))
    assert_bitwise_equal((out, lse), (many_out, many_lse), "65538 segments vs 3")
    g = randn(*out.shape, dtype=out.dtype)
    with simt.enabled():
        grads = bwd(args, kw, out, lse, g, deterministic=True)
        many_grads = bwd(many, kw, out, lse, g, deterministic=True)
    assert_bitwise_equal(grads, many_grads, "backward, 65538 segments vs 3")


def test_more_heads_than_a_grid_dimension_holds_is_a_clear_error():
    q = randn(2, 65536, 64, dtype=torch.bfloat16)
    k = randn(2, 1, 64, dtype=torch.bfloat16)
    cu = cu_seqlens([2])
    with simt.enabled(), pytest.raises(ValueError, match=r"at most 65535 .*heads"):
        varlen_attention(q, k, k, cu, cu, 2, 2)
