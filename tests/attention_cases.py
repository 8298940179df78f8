"""Random packed attention problems for the attention tests: segment lengths (with empty and length-1
segments, different q and k lengths), GQA shapes and every mask kind."""

import itertools

import torch

from lavin_fast.attention import TileMask
from tests.helpers import cu_seqlens, randn

MASKS = ["none", "causal", "frames", "tiles", "causal+frames", "causal+tiles", "frames+tiles", "all"]


def random_lengths(gen, n_segments, max_len):
    """Lengths with the awkward cases mixed in: 0, 1, a multiple of the kernel tile, odd sizes."""
    special = [0, 1, 64, 65]
    out = []
    for _ in range(n_segments):
        if torch.rand((), generator=gen) < 0.3:
            out.append(special[int(torch.randint(len(special), (), generator=gen))])
        else:
            out.append(int(torch.randint(2, max_len + 1, (), generator=gen)))
    return out


def random_frames(gen, lengths, sorted_frames=True):
    """Per-token frame ids, restarting in each segment (a few frames per segment)."""
    parts = []
    for n in lengths:
        f = torch.randint(0, 4, (n,), generator=gen, dtype=torch.int32)
        parts.append(f.sort().values if sorted_frames else f)
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int32)


def make_problem(seed, *, n_segments=4, max_len=200, H=8, H_kv=2, D=72, dtype=torch.float32,
                 masks="none", lens_q=None, lens_k=None, tile=(24, 40), sorted_frames=True,
                 device="cpu"):
    """(args for varlen_attention, kwargs) of a random problem; q/k/v rounded to dtype."""
    gen = torch.Generator().manual_seed(seed)
    lens_q = random_lengths(gen, n_segments, max_len) if lens_q is None else lens_q
    lens_k = random_lengths(gen, len(lens_q), max_len) if lens_k is None else lens_k
    tq, tk = sum(lens_q), sum(lens_k)
    q = randn(tq, H, D, dtype=dtype).to(device)
    k = randn(tk, H_kv, D, dtype=dtype).to(device)
    v = randn(tk, H_kv, D, dtype=dtype).to(device)
    max_q, max_k = max(lens_q), max(lens_k)
    kw = {}
    if "causal" in masks or masks == "all":
        kw["causal"] = True
    if "frames" in masks or masks == "all":
        kw["frame_ids_q"] = random_frames(gen, lens_q, sorted_frames).to(device)
        kw["frame_ids_k"] = random_frames(gen, lens_k, sorted_frames).to(device)
    if "tiles" in masks or masks == "all":
        kw["tile_mask"] = TileMask.random(len(lens_q), max_q, max_k, 0.6, tile[0], tile[1],
                                          generator=gen, device=device)
    args = (q, k, v, cu_seqlens(lens_q, device), cu_seqlens(lens_k, device), max_q, max_k)
    return args, kw


def packed_lengths_cases():
    """(lens_q, lens_k) pairs: 1 to 8 segments of lengths 0, 1 and up to a few hundred."""
    return [
        ([37, 0, 1, 200, 64], [50, 3, 0, 180, 65]),
        ([300], [257]),
        ([1], [1]),
        ([5, 17, 1, 0, 129, 33, 2, 80], [5, 17, 1, 0, 129, 33, 2, 80]),
        ([128, 128], [256, 64]),
    ]


def cumulative(lengths):
    return list(itertools.accumulate(lengths, initial=0))
