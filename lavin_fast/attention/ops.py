"""Varlen (packed) attention as PyTorch operators: fake kernels, autograd, and the public function.

Shapes (FlashAttention's varlen convention): q (total_q, H, D), k/v (total_k, H_kv, D) with
H % H_kv == 0 (GQA; query head h reads KV head h // (H // H_kv)); cu_seqlens_q/k int32 (S + 1,) give
the segments; fp32, bf16 or fp16 with fp32 compute. Masks (all optional, combinable with the
segments' block-diagonal mask): causal (bottom-right aligned), block-causal by frame ids, and a
block-sparse TileMask. See docs/attention.md.
"""

import math
import operator

import torch

from lavin_fast._checks import FLOATS, check_device, check_dtype_of, check_shape, check_tensor, fail
from lavin_fast._fake import register_fake
from lavin_fast._native import load
from lavin_fast.attention.tile_mask import TileMask

load()
_ops = torch.ops.lavin_fast

# ---- fake (meta) kernels: shapes only; the native kernels check values ----

@register_fake("lavin_fast::varlen_attention")
def _varlen_attention_fake(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                           softmax_scale, causal, frame_ids_q, frame_ids_k, tile_mask, tile_q, tile_k):
    out = torch.empty_like(q, memory_format=torch.contiguous_format)
    lse = q.new_empty((q.shape[1], q.shape[0]), dtype=torch.float32)
    return out, lse, torch.empty_like(lse)


@register_fake("lavin_fast::varlen_attention_backward")
def _varlen_attention_backward_fake(grad_out, q, k, v, out, lse, lse_residual, cu_seqlens_q, cu_seqlens_k,
                                    max_seqlen_q, max_seqlen_k, softmax_scale, causal, frame_ids_q,
                                    frame_ids_k, tile_mask, tile_q, tile_k, deterministic):
    return tuple(torch.empty_like(t, memory_format=torch.contiguous_format) for t in (q, k, v))


# ---- autograd: differentiable in q, k, v; lse and lse_residual are auxiliary outputs ----

def _setup(ctx, inputs, output):
    (q, k, v, cu_q, cu_k, max_q, max_k, scale, causal, frame_q, frame_k, tiles, tile_q, tile_k) = inputs
    ctx.args = (max_q, max_k, scale, causal, tile_q, tile_k)
    ctx.save_for_backward(q, k, v, *output, cu_q, cu_k, frame_q, frame_k, tiles)
    ctx.mark_non_differentiable(output[1], output[2])


def _backward_with(ctx, grad_out, deterministic):
    q, k, v, out, lse, lse_residual, cu_q, cu_k, frame_q, frame_k, tiles = ctx.saved_tensors
    max_q, max_k, scale, causal, tile_q, tile_k = ctx.args
    return _ops.varlen_attention_backward(grad_out, q, k, v, out, lse, lse_residual, cu_q, cu_k, max_q,
                                          max_k, scale, causal, frame_q, frame_k, tiles, tile_q, tile_k,
                                          deterministic)


def _backward(ctx, grad_out, _grad_lse, _grad_lse_residual):
    gq, gk, gv = _backward_with(ctx, grad_out, torch.are_deterministic_algorithms_enabled())
    return gq, gk, gv, None, None, None, None, None, None, None, None, None, None, None


torch.library.register_autograd("lavin_fast::varlen_attention", _backward, setup_context=_setup)


class _DeterministicVarlenAttention(torch.autograd.Function):
    """The same op, with the backward's deterministic mode forced on (the schema of the forward has
    no such flag, so the request travels through this Function)."""

    @staticmethod
    def forward(q, k, v, *rest):
        return _ops.varlen_attention(q, k, v, *rest)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _setup(ctx, inputs, output)

    @staticmethod
    def backward(ctx, grad_out, _grad_lse, _grad_lse_residual):
        gq, gk, gv = _backward_with(ctx, grad_out, True)
        return gq, gk, gv, *([None] * 11)


# ---- argument checks of the public function ----
# Shapes, dtypes and devices only (they trace under torch.compile); the native op repeats them and
# also checks the values of cu_seqlens (on the CPU) against the totals and max_seqlen.

_OP = "lavin_fast.varlen_attention"


def _seqlen(name, m):
    """max_seqlen as the op takes it: any integral (numpy integers too, as FlashAttention), not bool.
    Under torch.compile an int input is symbolic: it must reach the op untouched (operator.index or a
    comparison in Python would specialise the graph on its value), so its sign goes to torch._check."""
    if isinstance(m, bool) or not hasattr(type(m), "__index__"):
        fail(_OP, TypeError, f"argument '{name}' must be an int (any integral type), got {type(m).__name__}")
    if not isinstance(m, (int, torch.SymInt)):
        m = operator.index(m)
    if torch.compiler.is_compiling() or isinstance(m, torch.SymInt):
        torch._check(m >= 0, lambda: f"{_OP}: argument '{name}' must be >= 0")
    elif m < 0:
        fail(_OP, ValueError, f"argument '{name}' must be >= 0, got {m}")
    return m


def _check_args(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, frame_ids_q,
                frame_ids_k, tile_mask):
    on_q = (q, "q")
    check_tensor(_OP, "q", q, FLOATS, dims=3, layout="(total_q, H, D)")
    for name, t in (("k", k), ("v", v)):
        if isinstance(t, torch.Tensor):
            check_dtype_of(_OP, name, t, q, "q")
        check_tensor(_OP, name, t, (q.dtype,), dims=3, layout="(total_k, H_kv, D)", like=on_q)
    H, D = q.shape[1], q.shape[2]
    if H < 1 or D < 1:  # before the default softmax_scale 1 / sqrt(D)
        fail(_OP, ValueError, f"argument 'q' must have H >= 1 heads and head_dim D >= 1, got shape {tuple(q.shape)}")
    if k.shape[2] != D:
        fail(_OP, ValueError, f"argument 'k' must have shape (total_k, H_kv, D) with D = q.shape[2] = {D}, "
                              f"got {tuple(k.shape)}")
    if v.shape != k.shape:
        fail(_OP, ValueError, f"argument 'v' must have the shape of 'k' {tuple(k.shape)}, got {tuple(v.shape)}")
    if k.shape[1] < 1 or H % k.shape[1] != 0:
        fail(_OP, ValueError, f"the number of query heads H = q.shape[1] = {H} must be a multiple of the "
                              f"number of KV heads H_kv = k.shape[1] = {k.shape[1]}")
    for name, t in (("cu_seqlens_q", cu_seqlens_q), ("cu_seqlens_k", cu_seqlens_k)):
        check_tensor(_OP, name, t, (torch.int32,), dims=1, layout="(S + 1,)", like=on_q)
    if cu_seqlens_q.shape != cu_seqlens_k.shape:
        fail(_OP, ValueError, f"argument 'cu_seqlens_k' must have the length of 'cu_seqlens_q' (S + 1 = "
                              f"{cu_seqlens_q.shape[0]}), got {cu_seqlens_k.shape[0]}")
    if (frame_ids_q is None) != (frame_ids_k is None):
        fail(_OP, ValueError, "arguments 'frame_ids_q' and 'frame_ids_k' must be given together")
    if frame_ids_q is not None:
        for name, t, total, layout in (("frame_ids_q", frame_ids_q, q.shape[0], "(total_q,)"),
                                       ("frame_ids_k", frame_ids_k, k.shape[0], "(total_k,)")):
            check_tensor(_OP, name, t, (torch.int32,), dims=1, layout=layout, like=on_q)
            check_shape(_OP, name, t, (total,), layout)
    if tile_mask is not None:
        if not isinstance(tile_mask, TileMask):
            fail(_OP, TypeError, "argument 'tile_mask' must be a lavin_fast.attention.TileMask, got "
                                 f"{type(tile_mask).__name__}")
        expected = (cu_seqlens_q.shape[0] - 1,
                    *TileMask.num_tiles(max_seqlen_q, max_seqlen_k, tile_mask.tile_q, tile_mask.tile_k))
        check_shape(_OP, "tile_mask", tile_mask.mask, expected,
                    "(S, ceil(max_seqlen_q / tile_q), ceil(max_seqlen_k / tile_k))")
        check_device(_OP, "tile_mask", tile_mask.mask, q, "q")


def _distinct(args):
    """The same tensor twice (cu_seqlens_q is cu_seqlens_k for self-attention) as two objects:
    torch.compile cannot trace an autograd.Function given one tensor twice."""
    seen, out = set(), []
    for a in args:
        if isinstance(a, torch.Tensor):
            if id(a) in seen:
                a = a.clone()
            seen.add(id(a))
        out.append(a)
    return out


# ---- public function ----

def varlen_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, *,
                     softmax_scale=None, causal=False, frame_ids_q=None, frame_ids_k=None,
                     tile_mask=None, deterministic=False):
    """Attention over packed variable-length segments, with GQA and combinable masks.

    q: (total_q, H, D); k, v: (total_k, H_kv, D), H % H_kv == 0; cu_seqlens_q/k: int32 (S + 1,)
    segment offsets (segment s: queries [cu_q[s], cu_q[s+1]), keys [cu_k[s], cu_k[s+1])); max_seqlen_*
    >= the longest segment (any integral; symbolic under torch.compile, so batches with different
    longest segments share one graph). Query i of a segment sees key j when every enabled mask
    allows it:
      causal:      j <= i + (len_k - len_q)  (bottom-right aligned, as FlashAttention)
      frame_ids:   frame_ids_k[j] <= frame_ids_q[i]  (int32 (total_q,), (total_k,); block-causal)
      tile_mask:   tile_mask.mask[s, i // tile_q, j // tile_k]  (TileMask; masked tiles cost nothing)
    softmax_scale defaults to 1/sqrt(D). deterministic=True makes the backward bitwise reproducible on
    every backend (the CPU backward always is).

    Returns (out (total_q, H, D) in q's dtype, lse (H, total_q) float32 natural-log log-sum-exp). A
    query that sees no key gets out = 0 and lse = -inf. Differentiable in q, k and v (not lse).
    """
    max_seqlen_q = _seqlen("max_seqlen_q", max_seqlen_q)
    max_seqlen_k = _seqlen("max_seqlen_k", max_seqlen_k)
    _check_args(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, frame_ids_q,
                frame_ids_k, tile_mask)
    scale = 1.0 / math.sqrt(q.shape[-1]) if softmax_scale is None else float(softmax_scale)
    tiles, tile_q, tile_k = (None, 0, 0) if tile_mask is None else (
        tile_mask.mask, tile_mask.tile_q, tile_mask.tile_k)
    args = (q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, scale, bool(causal),
            frame_ids_q, frame_ids_k, tiles, tile_q, tile_k)
    if deterministic and torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v)):
        out, lse, _ = _DeterministicVarlenAttention.apply(*_distinct(args))
    else:
        out, lse, _ = _ops.varlen_attention(*args)
    return out, lse
