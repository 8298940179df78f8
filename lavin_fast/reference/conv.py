"""Reference causal 3-D convolution: pad in time (and space) explicitly, then one conv3d.

The padded input P is k_t - 1 frames followed by x's T frames; the k_t - 1 frames are copies of x's
first frame ("replicate"), zeros ("zeros"), or the previous chunk's last k_t - 1 frames (`cache`,
which overrides temporal_pad). The returned cache is P's last k_t - 1 frames, so running a clip in
chunks and passing the cache along equals one pass (with temporal stride s: when every chunk but
the last has a multiple of s frames).
"""

import torch
import torch.nn.functional as F


def _triple(v):
    return (v,) * 3 if isinstance(v, int) else tuple(v)


def _pair(v):
    return (v,) * 2 if isinstance(v, int) else tuple(v)


def causal_pad(x, k_t, temporal_pad="replicate", cache=None):
    """P = [pad or cache (k_t - 1 frames), x] along dim 2."""
    if k_t == 1:
        return x
    if cache is not None:
        head = cache
    elif temporal_pad == "replicate":
        head = x[:, :, :1].expand(-1, -1, k_t - 1, -1, -1)
    elif temporal_pad == "zeros":
        head = x.new_zeros(x.shape[0], x.shape[1], k_t - 1, *x.shape[3:])
    else:
        raise ValueError(f"temporal_pad must be 'replicate' or 'zeros', got {temporal_pad!r}")
    return torch.cat([head, x], dim=2)


def causal_conv3d(x, weight, bias=None, stride=1, spatial_padding=0, temporal_pad="replicate",
                  cache=None, return_cache=False):
    """x (N, C, T, H, W), weight (O, C, k_t, k_h, k_w), bias (O,) -> y (N, O, T_out, H_out, W_out)
    with T_out = (T - 1) // s_t + 1, and the new cache (N, C, k_t - 1, H, W) if return_cache.

    Computes in float32 for half-precision inputs and in float64 for float64 inputs."""
    c = torch.promote_types(x.dtype, torch.float32)
    k_t = weight.shape[2]
    ph, pw = _pair(spatial_padding)
    p = causal_pad(x.to(c), k_t, temporal_pad, None if cache is None else cache.to(c))
    # Spatial zero padding explicit too: conv3d refuses frames of zero height or width even where the
    # padding gives them output windows.
    y = F.conv3d(F.pad(p, (pw, pw, ph, ph)), weight.to(c), None if bias is None else bias.to(c),
                 stride=_triple(stride)).to(x.dtype)
    if not return_cache:
        return y
    new_cache = p[:, :, p.shape[2] - (k_t - 1):].to(x.dtype)
    return y, new_cache
