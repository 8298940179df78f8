"""FlashAttention 2's ``flash_attn_varlen_func`` signature over lavin_fast's varlen attention, so code
written for flash-attn can swap it in (``from lavin_fast.attention import flash_attn_varlen_func``)."""

from lavin_fast.attention.ops import varlen_attention


def _unsupported(what):
    raise NotImplementedError(f"lavin_fast.flash_attn_varlen_func: {what} is not supported")


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                           dropout_p=0.0, softmax_scale=None, causal=False, window_size=(-1, -1),
                           softcap=0.0, alibi_slopes=None, deterministic=False,
                           return_attn_probs=False, block_table=None):
    """q (total_q, H, D), k/v (total_k, H_kv, D), cu_seqlens int32 (B + 1,) -> out (total_q, H, D), or
    (out, softmax_lse (H, total_q), None) with return_attn_probs=True (the probabilities themselves
    are never materialised). Supported: softmax_scale, causal (bottom-right aligned), GQA/MQA,
    deterministic, fp32 as well as fp16/bf16. Not supported (NotImplementedError): dropout_p > 0,
    window_size other than (-1, -1), softcap, alibi_slopes, block_table."""
    if dropout_p != 0.0:
        _unsupported(f"dropout_p = {dropout_p} (only 0.0)")
    if tuple(window_size) != (-1, -1):
        _unsupported(f"window_size = {tuple(window_size)} (only (-1, -1); a TileMask.local mask in "
                     "lavin_fast.attention.varlen_attention gives tile-granular windows)")
    if softcap != 0.0:
        _unsupported(f"softcap = {softcap} (only 0.0)")
    if alibi_slopes is not None:
        _unsupported("alibi_slopes")
    if block_table is not None:
        _unsupported("block_table (paged KV cache)")
    out, lse = varlen_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k,
                                softmax_scale=softmax_scale, causal=causal,
                                deterministic=deterministic)
    return (out, lse, None) if return_attn_probs else out
