"""The fused ops the J-DiT calls, each behind one small function with the contract's signature
(/work/attention_contract.md), so the model reads the same whichever backend serves them."""

from lavin_fast.attention import varlen_attention as _varlen_attention
from lavin_fast.rope import qk_norm_rope as _qk_norm_rope

# Which fused ops the model runs on (reported by `lavin-fast bench`).
FUSED = {"varlen_attention": True, "qk_norm_rope": True, "linear": True}


def varlen_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, *,
                     softmax_scale=None):
    """q (total_q, H, D), k/v (total_k, H_kv, D), segments by cu_seqlens (int32) -> out like q."""
    return _varlen_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                             softmax_scale=softmax_scale)[0]


def qk_norm_rope(x, weight, positions, num_heads, *, eps=1e-6):
    """RMSNorm over the full projected width (with weight), then 3-D RoPE per head (LaVin-DiT: equal
    thirds, base 10000, rotate-half). x (N, num_heads*D), positions (N, 3) -> (N, num_heads, D)."""
    return _qk_norm_rope(x, weight, positions, num_heads, eps=eps)
