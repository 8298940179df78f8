"""Bad input to varlen attention is a clear error naming the argument and the expectation, from the
public Python function and from the native ops alike, raised before any output exists (the inputs
are left untouched)."""

import pytest
import torch

from lavin_fast.attention import TileMask, flash_attn_varlen_func, varlen_attention
from tests.helpers import ATTENTION_BACKENDS, cu_seqlens, host_backend, randn

ops = torch.ops.lavin_fast
ERRORS = (ValueError, TypeError, RuntimeError)

Q, K, V = randn(10, 4, 64), randn(12, 2, 64), randn(12, 2, 64)
CQ, CK = cu_seqlens([4, 6]), cu_seqlens([5, 7])
FQ, FK = torch.zeros(10, dtype=torch.int32), torch.zeros(12, dtype=torch.int32)


def ints(values):
    return torch.tensor(values, dtype=torch.int32)


def py(q=Q, k=K, v=V, cq=CQ, ck=CK, mq=6, mk=7, **kw):
    return lambda: varlen_attention(q, k, v, cq, ck, mq, mk, **kw)


def native(q=Q, k=K, v=V, cq=CQ, ck=CK, mq=6, mk=7, scale=0.25, causal=False, fq=None, fk=None,
           tiles=None, tq=0, tk=0):
    return lambda: ops.varlen_attention(q, k, v, cq, ck, mq, mk, scale, causal, fq, fk, tiles, tq, tk)


def both(pattern, **kw):
    """The same bad argument through both layers (keywords common to py() and native())."""
    return [(py(**kw), pattern), (native(**kw), pattern)]


TILES_OK = torch.ones(2, 1, 1, dtype=torch.bool)

CASES = {
    "q float64": both(r"'q' must have dtype float32 or bfloat16 or float16, got float64", q=Q.double()),
    "k other dtype": both(r"'k' must have .*dtype .*float32.*got bfloat16", k=K.bfloat16()),
    "q 2-D": both(r"'q' must be 3-D \(total_q, H, D\)", q=Q[:, 0]),
    "k head_dim": both(r"'k' must have shape \(total_k, H_kv, D\) with D = q.shape\[2\]",
                       k=randn(12, 2, 8), v=randn(12, 2, 8)),
    "v shape": both(r"'v' must have the shape of 'k'|'v' must have shape", v=randn(12, 1, 64)),
    "H % H_kv": both(r"H = q.shape\[1\] = 4 must be a multiple of the number of KV heads H_kv = "
                     r"k.shape\[1\] = 3", k=randn(12, 3, 64), v=randn(12, 3, 64)),
    "cu_seqlens_q int64": both(r"'cu_seqlens_q' must have dtype int32, got int64", cq=CQ.long()),
    "cu_seqlens_k 2-D": both(r"'cu_seqlens_k' must be 1-D", ck=CK.reshape(1, 3)),
    "cu_seqlens lengths": both(r"'cu_seqlens_k' must have the length of 'cu_seqlens_q' \(S \+ 1 = 3\)",
                               ck=ints([0, 12])),
    "cu_seqlens_q not from 0": both(r"'cu_seqlens_q' must start at 0", cq=ints([1, 4, 10])),
    "cu_seqlens_k decreasing": both(r"'cu_seqlens_k' must be non-decreasing", ck=ints([0, 13, 12])),
    "cu_seqlens_q not ending at total": both(
        r"'cu_seqlens_q' must end at total_q = q.shape\[0\] = 10, got cu_seqlens_q\[-1\] = 9",
        cq=ints([0, 4, 9])),
    "max_seqlen_q too small": both(r"'max_seqlen_q' must be >= every segment length of "
                                   r"'cu_seqlens_q' \(the longest is 6\), got 5", mq=5),
    "max_seqlen_k negative": both(r"'max_seqlen_k' must be", mk=-1),
    "unsupported head_dim": both(r"unsupported \(dtype, head_dim\) = \(float32, q.shape\[2\] = 300\).*1..256",
                                 q=randn(10, 4, 300), k=randn(12, 2, 300), v=randn(12, 2, 300)),
    "frame ids alone": [(py(frame_ids_q=FQ), r"'frame_ids_q' and 'frame_ids_k' must be given together"),
                        (native(fq=FQ), r"'frame_ids_q' and 'frame_ids_k' must be given together")],
    "frame ids int64": [(py(frame_ids_q=FQ.long(), frame_ids_k=FK), r"'frame_ids_q' must have dtype int32"),
                        (native(fq=FQ.long(), fk=FK), r"'frame_ids_q' must have dtype int32")],
    "frame ids shape": [(py(frame_ids_q=FQ, frame_ids_k=FK[:11]), r"'frame_ids_k' must have shape \(total_k,\)"),
                        (native(fq=FQ, fk=FK[:11]), r"'frame_ids_k' must have shape \(total_k,\)")],
    "tile_mask shape": [
        (py(tile_mask=TileMask(torch.ones(2, 1, 1, dtype=torch.bool), 4, 8)),
         r"'tile_mask' must have shape \(S, ceil\(max_seqlen_q / tile_q\), ceil\(max_seqlen_k / tile_k\)\)"),
        (native(tiles=torch.ones(2, 1, 1, dtype=torch.bool), tq=4, tk=8), r"'tile_mask' must have shape")],
    "tile_mask dtype": [
        (lambda: TileMask(TILES_OK.int(), 8, 8), r"'mask' must be a 3-D bool tensor"),
        (native(tiles=TILES_OK.int(), tq=8, tk=8), r"'tile_mask' must have dtype bool")],
    "tile size 0": [(lambda: TileMask(TILES_OK, 0, 8), r"'tile_q' must be an int > 0"),
                    (native(tiles=TILES_OK, tq=0, tk=8), r"'tile_q' and 'tile_k' must be > 0")],
    "tile_mask not a TileMask": [(py(tile_mask=TILES_OK), r"'tile_mask' must be a lavin_fast.attention.TileMask")],
    "softmax_scale inf": [(native(scale=float("inf")), r"'softmax_scale' must be finite")],
}
FLAT = [(name, call, pattern) for name, calls in CASES.items() for call, pattern in calls]


@pytest.mark.parametrize("backend", ATTENTION_BACKENDS if "simt" not in ATTENTION_BACKENDS else ["cpu", "simt"])
@pytest.mark.parametrize("name,call,pattern", FLAT, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(FLAT)])
def test_bad_input_is_a_clear_error(name, call, pattern, backend):
    if backend == "cuda":
        pytest.skip("the CPU tensors of these cases go to the CPU registration")
    before = [t.clone() for t in (Q, K, V, CQ, CK)]
    with host_backend(backend), pytest.raises(ERRORS, match=pattern):
        call()
    for t, b in zip((Q, K, V, CQ, CK), before):
        assert torch.equal(t, b), "an input was modified"


def test_backward_checks():
    out, lse, res = ops.varlen_attention(Q, K, V, CQ, CK, 6, 7, 0.25, False, None, None, None, 0, 0)
    call = lambda g=out, o=out, l=lse, r=res: ops.varlen_attention_backward(
        g, Q, K, V, o, l, r, CQ, CK, 6, 7, 0.25, False, None, None, None, 0, 0, False)
    with pytest.raises(ERRORS, match=r"'lse' must have shape \(H, total_q\) = \(4, 10\), got \(10, 4\)"):
        call(l=lse.t().contiguous())
    with pytest.raises(ERRORS, match=r"'lse' must have dtype float32, got float64"):
        call(l=lse.double())
    with pytest.raises(ERRORS, match=r"'lse_residual' must have shape \(H, total_q\) = \(4, 10\), got \(10, 4\)"):
        call(r=res.t().contiguous())
    with pytest.raises(ERRORS, match=r"'lse_residual' must have dtype float32, got float64"):
        call(r=res.double())
    with pytest.raises(ERRORS, match=r"'grad_out' must have shape q.shape"):
        call(g=randn(10, 4, 8))
    with pytest.raises(ERRORS, match=r"'out' must have the dtype of 'q'"):
        call(o=out.bfloat16())


def test_device_mismatch():
    with pytest.raises(ERRORS, match=r"'k' must be on cpu \(the device of 'q'\), got meta"):
        varlen_attention(Q, K.to("meta"), V, CQ, CK, 6, 7)
    with pytest.raises(ERRORS, match=r"'cu_seqlens_q' must be on cpu"):
        varlen_attention(Q, K, V, CQ.to("meta"), CK, 6, 7)


@pytest.mark.parametrize("kw,pattern", [
    (dict(dropout_p=0.1), r"dropout_p = 0.1"),
    (dict(window_size=(8, 0)), r"window_size = \(8, 0\)"),
    (dict(softcap=30.0), r"softcap"),
    (dict(alibi_slopes=torch.ones(4)), r"alibi_slopes"),
    (dict(block_table=torch.zeros(1, 1, dtype=torch.int32)), r"block_table"),
])
def test_flash_attn_compat_unsupported_arguments(kw, pattern):
    with pytest.raises(NotImplementedError, match=pattern):
        flash_attn_varlen_func(Q, K, V, CQ, CK, 6, 7, **kw)


def test_max_seqlen_takes_any_integral():
    """numpy integers (what a numpy-built batch gives) are ints to FlashAttention and here; bools and
    floats are not."""
    import numpy as np

    expected = varlen_attention(Q, K, V, CQ, CK, 6, 7)[0]
    for mq, mk in ((np.int64(6), np.int32(7)), (np.uint16(6), np.int64(7))):
        torch.testing.assert_close(flash_attn_varlen_func(Q, K, V, CQ, CK, mq, mk), expected, rtol=0, atol=0)
        torch.testing.assert_close(varlen_attention(Q, K, V, CQ, CK, mq, mk)[0], expected, rtol=0, atol=0)
    for bad, name in ((True, "bool"), (6.0, "float"), (np.float32(6), "float32")):
        with pytest.raises(TypeError, match=rf"argument 'max_seqlen_q' must be an int .*got {name}"):
            flash_attn_varlen_func(Q, K, V, CQ, CK, bad, 7)
