"""Per-chunk state of a streaming (chunked) ST-VAE run, and the three primitives that consult it.

Without an active state every layer computes the released one-pass function of its input. A
streaming driver (stream.py) activates a `ChunkState` around each temporal chunk; the layers then
- take the k_t - 1 previous input frames of every causal conv from `caches` instead of replicating
  frame 0 (the first chunk still replicates),
- treat frame 0 specially only in the chunk that holds it (`first`), and pool in time by the parity
  of the whole clip (`keep_first`), so chunk boundaries do not change the function,
- normalise with whole-clip GroupNorm statistics (`stats`) or, in the approximate mode, with the
  statistics of the chunk alone.
"""

import contextlib
import contextvars

import torch
import torch.nn.functional as F

from lavin_fast.conv import causal_conv3d

_STATE = contextvars.ContextVar("lavin_fast_stvae_chunk_state", default=None)


class StopPass(Exception):
    """Raised by the norm whose statistics a stats pass is collecting: nothing after it is needed."""


class ChunkState:
    def __init__(self, exact_norm=False):
        self.first = True          # the current chunk holds frame 0 of the clip
        self.caches = {}           # id(conv) -> the last k_t - 1 frames of its input so far
        self.keep_first = {}       # id(downsampler) -> the whole clip has an odd number of frames there
        self.exact_norm = exact_norm
        self.stats = {}            # id(GroupNorm) -> (mean, rstd), each (N, G) float64, whole clip
        self.target = None         # id of the norm being collected in this pass
        self.collect_all = False   # two-pass mode, pass 1: chunk statistics, accumulate every norm
        self.accs = {}             # id(GroupNorm) -> [sum, sum of squares, count] (collect_all)

    def reset_pass(self):
        self.first, self.caches, self.target = True, {}, None


def current():
    return _STATE.get()


@contextlib.contextmanager
def active(state):
    token = _STATE.set(state)
    try:
        yield state
    finally:
        _STATE.reset(token)


def causal(conv_module, x):
    """The causal conv of a CausalConv3d-like module (attributes conv, height_pad, width_pad)."""
    conv, st = conv_module.conv, current()
    kw = dict(stride=list(conv.stride), spatial_padding=(conv_module.height_pad, conv_module.width_pad))
    if st is None:
        return causal_conv3d(x, conv.weight, conv.bias, **kw)
    key = id(conv_module)
    out, st.caches[key] = causal_conv3d(x, conv.weight, conv.bias, cache=st.caches.get(key),
                                        return_cache=True, **kw)
    return out


def _accumulate(accs, key, x, groups):
    xg = x.reshape(x.shape[0], groups, -1).to(torch.float64)
    s, ss, c = xg.sum(-1), xg.square().sum(-1), xg.shape[-1]
    if key not in accs:
        accs[key] = [s, ss, c]
    else:
        acc = accs[key]
        acc[0] += s
        acc[1] += ss
        acc[2] += c


def group_norm(norm, x):
    """nn.GroupNorm `norm` applied to x (N, C, T, H, W) with the statistics the state asks for."""
    st = current()
    if st is not None and st.collect_all:
        _accumulate(st.accs, id(norm), x, norm.num_groups)
    if st is None or not st.exact_norm:
        return F.group_norm(x, norm.num_groups, norm.weight, norm.bias, norm.eps)
    key, n, g = id(norm), x.shape[0], norm.num_groups
    if key not in st.stats:
        if st.target is None:
            st.target = key
        assert st.target == key, "norms must be met in the same order in every chunk"
        _accumulate(st.accs, key, x, g)
        raise StopPass
    mean, rstd = st.stats[key]
    # y = (x - mean) * rstd * w + b as one per-channel scale and shift.
    cpg = x.shape[1] // g
    scale = rstd.repeat_interleave(cpg, dim=1)
    shift = -mean.repeat_interleave(cpg, dim=1) * scale
    if norm.weight is not None:
        w = norm.weight.to(torch.float64)
        scale, shift = scale * w, shift * w + norm.bias.to(torch.float64)
    shape = (n, x.shape[1]) + (1,) * (x.dim() - 2)
    return torch.addcmul(shift.to(x.dtype).view(shape), x, scale.to(x.dtype).view(shape))


def finish(state, norm_modules, keys):
    """Turn the accumulated sums of the norms `keys` into whole-clip (mean, rstd)."""
    for key in keys:
        s, ss, c = state.accs.pop(key)
        mean = s / c
        var = (ss / c - mean.square()).clamp_min(0)
        state.stats[key] = (mean, torch.rsqrt(var + norm_modules[key].eps))
