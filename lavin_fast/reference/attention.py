"""Reference of varlen (packed) attention with GQA and combinable masks: the specification of
lavin_fast.attention.varlen_attention (see csrc/attention/attention_params.h for the mask semantics).

Plain per-segment masked softmax, written for clarity. Computes in float64 for float64 inputs and in
float32 otherwise (as the kernels do), and is differentiable in q, k and v.
"""

import math

import torch


def _tile_mask_parts(tile_mask):
    """(bool tensor (S, n_tiles_q, n_tiles_k), tile_q, tile_k) from a TileMask (duck-typed, so the
    reference does not import the kernels' package)."""
    if tile_mask is None:
        return None, 0, 0
    return tile_mask.mask, tile_mask.tile_q, tile_mask.tile_k


def segment_mask(len_q, len_k, *, causal=False, frames_q=None, frames_k=None, tiles=None, tile_q=0,
                 tile_k=0, device="cpu"):
    """(len_q, len_k) bool: which keys each query of one segment may see.

    frames_q/frames_k: int (len_q,)/(len_k,) frame (chunk) index of each token of the segment;
    tiles: bool (n_tiles_q, n_tiles_k) tile mask of the segment, tile indices from the segment start.
    """
    i = torch.arange(len_q, device=device)[:, None]
    j = torch.arange(len_k, device=device)[None, :]
    allowed = torch.ones(len_q, len_k, dtype=torch.bool, device=device)
    if causal:  # bottom-right aligned, as FlashAttention
        allowed &= j <= i + (len_k - len_q)
    if frames_q is not None:
        allowed &= frames_k.long()[None, :] <= frames_q.long()[:, None]
    if tiles is not None:
        allowed &= tiles.to(device)[i // tile_q, j // tile_k]
    return allowed


def varlen_attention(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q=None, max_seqlen_k=None, *,
                     softmax_scale=None, causal=False, frame_ids_q=None, frame_ids_k=None,
                     tile_mask=None, deterministic=False):
    """q (total_q, H, D), k/v (total_k, H_kv, D), cu_seqlens int (S + 1,) -> (out (total_q, H, D) in
    q's dtype, lse (H, total_q) float32 (float64 for float64 input)). A query that sees no key gets
    out = 0 and lse = -inf. max_seqlen_* and deterministic do not change the result."""
    del max_seqlen_q, max_seqlen_k, deterministic
    total_q, H, D = q.shape
    H_kv = k.shape[1]
    group = H // H_kv
    scale = 1.0 / math.sqrt(D) if softmax_scale is None else softmax_scale
    cdt = torch.float64 if q.dtype == torch.float64 else torch.float32
    tiles, tq, tk = _tile_mask_parts(tile_mask)
    cq = [int(c) for c in cu_seqlens_q.tolist()]
    ck = [int(c) for c in cu_seqlens_k.tolist()]
    outs, lses = [], []
    for s in range(len(cq) - 1):
        q0, q1, k0, k1 = cq[s], cq[s + 1], ck[s], ck[s + 1]
        qs = q[q0:q1].to(cdt).transpose(0, 1)  # (H, Lq, D)
        ks = k[k0:k1].to(cdt).repeat_interleave(group, dim=1).transpose(0, 1)
        vs = v[k0:k1].to(cdt).repeat_interleave(group, dim=1).transpose(0, 1)
        allowed = segment_mask(
            q1 - q0, k1 - k0, causal=causal,
            frames_q=None if frame_ids_q is None else frame_ids_q[q0:q1],
            frames_k=None if frame_ids_k is None else frame_ids_k[k0:k1],
            tiles=None if tiles is None else tiles[s], tile_q=tq, tile_k=tk, device=q.device)
        scores = (qs @ ks.transpose(1, 2)) * scale
        scores = scores.masked_fill(~allowed, float("-inf"))
        # Softmax that gives 0 (not NaN) for rows without any visible key, with finite gradients.
        row_max = (scores.amax(dim=-1, keepdim=True) if k1 > k0
                   else scores.new_full((H, q1 - q0, 1), float("-inf")))
        row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max)).detach()
        p = torch.exp(scores - row_max)
        denom = p.sum(dim=-1, keepdim=True)
        p = p / torch.where(denom > 0, denom, torch.ones_like(denom))
        outs.append((p @ vs).transpose(0, 1))
        lses.append((torch.log(denom) + row_max).squeeze(-1))  # log(0) = -inf for empty rows
    out = torch.cat(outs, 0) if outs else q.new_zeros((0, H, D), dtype=cdt)
    lse = torch.cat(lses, 1) if lses else q.new_zeros((H, 0), dtype=cdt)
    return out.to(q.dtype), lse.to(cdt)
