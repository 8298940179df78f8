"""Varlen attention as PyTorch operators: opcheck of both ops, torch.compile(fullgraph=True) with
dynamic shapes, FlashAttention's flash_attn_varlen_func signature, and the TileMask helpers."""

import pytest
import torch

import lavin_fast
import lavin_fast.reference as ref
from lavin_fast.attention import TileMask, flash_attn_varlen_func, varlen_attention
from tests.attention_cases import make_problem
from tests.helpers import (ATTENTION_BACKENDS, assert_close, counting_backend, cu_seqlens, f64, host_backend,
                           randn)

ops = torch.ops.lavin_fast


def _native_args(args, kw, scale=0.3):
    tm = kw.get("tile_mask")
    return (*args, scale, kw.get("causal", False), kw.get("frame_ids_q"), kw.get("frame_ids_k"),
            None if tm is None else tm.mask, 0 if tm is None else tm.tile_q, 0 if tm is None else tm.tile_k)


@pytest.mark.parametrize("backend", [b for b in ATTENTION_BACKENDS if b != "cuda"])
@pytest.mark.parametrize("masks,dtype", [("none", torch.float32), ("all", torch.float32),
                                         ("causal", torch.bfloat16)])
def test_opcheck(backend, masks, dtype):
    args, kw = make_problem(4, n_segments=3, max_len=40, H=4, H_kv=2, D=64, masks=masks, dtype=dtype)
    fwd_args = _native_args(args, kw)
    with host_backend(backend):
        out, lse, res = ops.varlen_attention(*fwd_args)
        grad_args = tuple(a.detach().clone().requires_grad_(i < 3) if isinstance(a, torch.Tensor) else a
                          for i, a in enumerate(fwd_args))
        torch.library.opcheck(ops.varlen_attention, grad_args)
        bwd_args = (randn(*out.shape, dtype=dtype), *args[:3], out, lse, res, *fwd_args[3:], False)
        torch.library.opcheck(ops.varlen_attention_backward, bwd_args)


def test_compile_fullgraph_dynamic_with_backward():
    torch._dynamo.reset()

    def f(q, k, v, cu, fq, mx):
        out, _ = varlen_attention(q, k, v, cu, cu, mx, mx, causal=True, frame_ids_q=fq, frame_ids_k=fq)
        return (out * out).sum()

    compiled = torch.compile(f, fullgraph=True, dynamic=True)
    for lens in ([30, 50], [7, 90, 20]):
        T = sum(lens)
        q, k, v = randn(T, 4, 24), randn(T, 2, 24), randn(T, 2, 24)
        fq = torch.cat([torch.arange(n) // 8 for n in lens]).int()
        cu = cu_seqlens(lens)
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        compiled(*leaves, cu, fq, max(lens)).backward()
        eager = [t.clone().requires_grad_() for t in (q, k, v)]
        f(*eager, cu, fq, max(lens)).backward()
        for a, b in zip(leaves, eager):
            torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-5)


class _PackedAttention(torch.nn.Module):
    """A packed training step's attention: qkv projection, varlen attention, output projection."""

    def __init__(self, dim=32, heads=2):
        super().__init__()
        self.heads = heads
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.proj = torch.nn.Linear(dim, dim)

    def forward(self, x, cu, max_seqlen):
        q, k, v = self.qkv(x).unflatten(-1, (3, self.heads, -1)).unbind(1)
        out, _ = varlen_attention(q, k, v, cu, cu, max_seqlen, max_seqlen, causal=True)
        return self.proj(out.flatten(1)).square().mean()


def test_compile_packed_step_does_not_recompile_per_max_seqlen():
    """A compiled packed training step over batches whose longest segment differs: max_seqlen is a
    SymInt in the schemas, so neither it nor the token count specialises the graph."""
    torch._dynamo.reset()
    gen = torch.Generator().manual_seed(3)
    model = _PackedAttention()
    graphs = []
    step = torch.compile(model, backend=counting_backend(graphs), fullgraph=True, dynamic=True)
    for batch in range(20):
        lens = torch.randint(2, 40 + 5 * batch, (2 + batch % 3,), generator=gen).tolist()
        x = randn(sum(lens), 32)
        loss = step(x, cu_seqlens(lens), max(lens))
        loss.backward()
        grads = [p.grad.clone() for p in model.parameters()]
        model.zero_grad()
        model(x, cu_seqlens(lens), max(lens)).backward()
        for a, p in zip(grads, model.parameters()):
            torch.testing.assert_close(a, p.grad, rtol=1e-5, atol=1e-6)
        model.zero_grad()
    assert len(graphs) <= 2, f"{len(graphs)} compiles for 20 batches"


def test_compile_deterministic():
    torch._dynamo.reset()

    def f(q, k, v, cu):
        return varlen_attention(q, k, v, cu, cu, 20, 20, causal=True, deterministic=True)[0].sum()

    q, k, v = randn(30, 4, 16), randn(30, 2, 16), randn(30, 2, 16)
    cu = cu_seqlens([10, 20])
    grads = []
    for fn in (torch.compile(f, fullgraph=True), f):
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        fn(*leaves, cu).backward()
        grads.append([t.grad for t in leaves])
    for a, b in zip(*grads):
        assert torch.equal(a, b)


def test_compile_with_tile_mask():
    torch._dynamo.reset()
    args, kw = make_problem(8, n_segments=3, max_len=90, masks="tiles")
    compiled = torch.compile(lambda *a: varlen_attention(*a, tile_mask=kw["tile_mask"])[0], fullgraph=True)
    torch.testing.assert_close(compiled(*args), varlen_attention(*args, **kw)[0])


def test_flash_attn_varlen_func_matches():
    args, kw = make_problem(12, n_segments=4, max_len=120, H=8, H_kv=2, D=64, masks="causal")
    out = flash_attn_varlen_func(*args, softmax_scale=0.2, causal=True)
    ref_out, ref_lse = ref.varlen_attention(*(f64(a) for a in args[:3]), *args[3:], softmax_scale=0.2,
                                            causal=True)
    assert_close(out, ref_out, torch.float32, "flash_attn_varlen_func")
    out2, lse, probs = flash_attn_varlen_func(*args, softmax_scale=0.2, causal=True,
                                              return_attn_probs=True, deterministic=True)
    assert torch.equal(out, out2) and probs is None and lse.shape == (8, args[0].shape[0])


def test_tile_mask_helpers_match_token_masks():
    # block_causal with one tile per chunk equals frame ids t // chunk.
    lens = [70, 33]
    q, k, v = randn(103, 4, 16), randn(103, 2, 16), randn(103, 2, 16)
    cu = cu_seqlens(lens)
    frames = torch.cat([torch.arange(n) // 16 for n in lens]).int()
    a, _ = varlen_attention(q, k, v, cu, cu, 70, 70, tile_mask=TileMask.block_causal(2, 70, 16))
    b, _ = varlen_attention(q, k, v, cu, cu, 70, 70, frame_ids_q=frames, frame_ids_k=frames)
    torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    full = TileMask.full(2, 70, 70, 32, 16)
    assert full.mask.shape == (2, 3, 5) and full.density() == 1.0
    local = TileMask.local(1, 256, 1, tile=64, causal=True)
    assert local.mask[0].int().tolist() == [[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    dense = TileMask.from_dense([[True, False], [True, True]], 64, 64)
    assert dense.mask.shape == (1, 2, 2)
    assert lavin_fast.TileMask is TileMask
