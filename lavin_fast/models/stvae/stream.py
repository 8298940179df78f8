"""Chunked (streaming) encode and decode: the clip goes through the network a few frames at a time.

Convolution caches carry the last k_t - 1 input frames of every causal conv from chunk to chunk, so
the convolutions see exactly what they would in one pass. GroupNorm is the only layer that mixes all
frames. Two modes:

- norm="exact": whole-clip statistics. A norm's statistics depend on the normalised output of every
  norm before it, so they are found one norm at a time: pass k streams the chunks up to norm k only
  (the norms before it use their whole-clip statistics from earlier passes) and accumulates per-group
  sum and sum of squares in float64; a final pass produces the output. Two passes cannot be exact for
  more than one norm. Memory stays that of one chunk; time grows (see docs/stvae.md).
- norm="chunk": every chunk is normalised with its own statistics (one pass, approximate).
- norm="two_pass": pass 1 runs like "chunk" and accumulates every norm's sums over the clip; pass 2
  normalises with them. Approximate (each norm's statistics come from inputs that earlier norms
  normalised per chunk), at twice the cost of one pass.
"""

import torch

from lavin_fast.models.stvae import state as S
from lavin_fast.models.stvae.layers import STVAEDownsample3D


def _level_ranges(t, keep_first):
    """Input frame range [a, b) of every output frame of one 2x temporal pooling of t frames."""
    if keep_first:
        return [(0, 1)] + [(2 * j - 1, 2 * j + 1) for j in range(1, (t + 1) // 2)]
    return [(2 * j, 2 * j + 2) for j in range(t // 2)]


def encoder_plan(encoder, t):
    """(keep_first per temporal downsampler, input frame range of every latent frame)."""
    keep, ranges = {}, [(i, i + 1) for i in range(t)]
    for m in encoder.modules():
        if isinstance(m, STVAEDownsample3D) and m.compress_time:
            keep[id(m)] = len(ranges) % 2 == 1
            ranges = [(ranges[a][0], ranges[b - 1][1]) for a, b in _level_ranges(len(ranges), keep[id(m)])]
    return keep, ranges


def _run_passes(fn, pieces, state, norms, out):
    """Stream `pieces` through fn until every norm has whole-clip statistics, then write the output.

    fn(piece) returns the chunk's output; out(i, y) stores output chunk i.
    """
    if state.collect_all:  # two-pass: statistics of a per-chunk-normalised pass, then the output
        state.reset_pass()
        for piece in pieces:
            with S.active(state):
                fn(piece)
            state.first = False
        S.finish(state, norms, list(state.accs))
        state.collect_all, state.exact_norm = False, True
    while True:
        state.reset_pass()
        for i, piece in enumerate(pieces):
            with S.active(state):
                try:
                    y = fn(piece)
                except S.StopPass:
                    y = None
            if state.target is None and y is not None:
                out(i, y)
            state.first = False
        if state.target is None:
            return
        S.finish(state, norms, [state.target])


def _norm_modules(module):
    return {id(m): m for m in module.modules() if isinstance(m, torch.nn.GroupNorm)}


MODES = ("exact", "chunk", "two_pass")


def _check_mode(norm):
    if norm not in MODES:
        raise ValueError(f"norm must be one of {MODES}, got {norm!r}")


def _state(norm):
    state = S.ChunkState(exact_norm=norm == "exact")
    state.collect_all = norm == "two_pass"
    return state


def encode_chunked(encoder, x, chunk_latents=2, norm="exact"):
    """Encoder output (N, 2 * latent, T_lat, h, w) computed chunk_latents latent frames at a time."""
    _check_mode(norm)
    if chunk_latents < 1:
        raise ValueError(f"chunk_latents must be >= 1, got {chunk_latents}")
    keep, ranges = encoder_plan(encoder, x.shape[2])
    pieces = [(ranges[a][0], ranges[min(a + chunk_latents, len(ranges)) - 1][1], a)
              for a in range(0, len(ranges), chunk_latents)]
    state = _state(norm)
    state.keep_first = keep
    result = {}

    def out(i, y):
        if "t" not in result:
            result["t"] = y.new_empty(*y.shape[:2], len(ranges), *y.shape[3:])
        a = pieces[i][2]
        result["t"][:, :, a:a + y.shape[2]] = y

    _run_passes(lambda p: encoder(x[:, :, p[0]:p[1]]), pieces, state, _norm_modules(encoder), out)
    return result["t"]


def decode_chunked(decoder, z, chunk_latents=2, norm="exact", time_factor=4):
    """Decoder output (N, 3, 1 + time_factor (T - 1), 8h, 8w), chunk_latents latent frames at a time."""
    _check_mode(norm)
    if chunk_latents < 1:
        raise ValueError(f"chunk_latents must be >= 1, got {chunk_latents}")
    t = z.shape[2]
    starts = list(range(0, t, chunk_latents))
    frame0 = [0 if a == 0 else 1 + time_factor * (a - 1) for a in starts]
    state = _state(norm)
    result = {}

    def out(i, y):
        if "t" not in result:
            result["t"] = y.new_empty(*y.shape[:2], 1 + time_factor * (t - 1), *y.shape[3:])
        result["t"][:, :, frame0[i]:frame0[i] + y.shape[2]] = y

    _run_passes(lambda a: decoder(z[:, :, a:a + chunk_latents]), starts, state, _norm_modules(decoder), out)
    return result["t"]
