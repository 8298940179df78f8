"""The fused ops the J-DiT calls, each behind one small function with the contract's signature
(/work/attention_contract.md). Each uses lavin_fast's op when its branch is in the package and the
pure-PyTorch fallback below otherwise, so the model runs (and is tested) either way; `FUSED` says
which is in use."""

import torch
import torch.nn.functional as F

from lavin_fast.reference.jdit import apply_rope, rope_cos_sin, rope_sections

try:  # branch attn-cpu
    from lavin_fast.attention import varlen_attention as _fused_attention
except ImportError:
    _fused_attention = None

try:  # branch rope
    from lavin_fast.rope import qk_norm_rope as _fused_qk_norm_rope
except ImportError:
    _fused_qk_norm_rope = None

FUSED = {"varlen_attention": _fused_attention is not None,
         "qk_norm_rope": _fused_qk_norm_rope is not None}


def _attention_fallback(q, k, v, cu_seqlens_q, cu_seqlens_k, softmax_scale):
    """Per-segment SDPA (GQA by enable_gqa): what the release computes, one segment at a time."""
    out = q.new_empty(q.shape)
    bq, bk = cu_seqlens_q.tolist(), cu_seqlens_k.tolist()
    for s in range(len(bq) - 1):
        qs, ks, vs = (t.transpose(0, 1).unsqueeze(0) for t in
                      (q[bq[s]:bq[s + 1]], k[bk[s]:bk[s + 1]], v[bk[s]:bk[s + 1]]))
        o = F.scaled_dot_product_attention(qs, ks, vs, scale=softmax_scale,
                                           enable_gqa=q.shape[1] != k.shape[1])
        out[bq[s]:bq[s + 1]] = o[0].transpose(0, 1)
    return out


def varlen_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, *,
                     softmax_scale=None):
    """q (total_q, H, D), k/v (total_k, H_kv, D), segments by cu_seqlens (int32) -> out like q."""
    if _fused_attention is not None:
        return _fused_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                                softmax_scale=softmax_scale)[0]
    return _attention_fallback(q, k, v, cu_seqlens_q, cu_seqlens_k, softmax_scale)


def qk_norm_rope(x, weight, positions, num_heads, *, eps=1e-6):
    """RMSNorm over the full projected width (with weight), then 3-D RoPE per head (LaVin-DiT:
    equal thirds, base 10000, rotate-half). x (N, num_heads*D), positions (N, 3) -> (N, num_heads, D)."""
    if _fused_qk_norm_rope is not None:
        return _fused_qk_norm_rope(x, weight, positions, num_heads, eps=eps)
    c = torch.promote_types(x.dtype, torch.float32)
    y = x.to(c)
    y = y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + eps)
    if weight is not None:
        y = y * weight.to(c)
    y = y.to(x.dtype).unflatten(-1, (num_heads, -1))
    d = y.shape[-1]
    cos, sin = rope_cos_sin(positions, d, dtype=c)
    return apply_rope(y, cos.to(y.dtype), sin.to(y.dtype), rope_sections(d))
