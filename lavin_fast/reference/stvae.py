"""Pure-PyTorch reference of the released LaVin-DiT ST-VAE (a CogVideoX-style causal video VAE).

The specification the fast model (lavin_fast.models.stvae) is tested against: one pass over the whole
clip, explicit F.pad + conv3d for every causal convolution, no caches and no streaming. It is a set of
functions over a state_dict with the released key names, so it works in float64 too.

    params = model.state_dict()
    mean, logvar = stvae_encode(params, clip, **config)
    video = stvae_decode(params, mean, **config)
"""

import torch
import torch.nn.functional as F

LATENT_SHIFT = 0.032470703125
LATENT_SCALE = 1.08936170213
SPATIAL_NORM_GROUPS = 32  # the release hard-codes 32 groups in the decoder's spatial norms
EPS = 1e-6


def causal_conv(p, prefix, x):
    """Conv3d (stride 1) after prepending k_t - 1 copies of frame 0 and zero-padding H, W by k // 2."""
    w, b = p[prefix + ".conv.weight"], p[prefix + ".conv.bias"]
    kt, kh, kw = w.shape[2:]
    if kt > 1:
        x = torch.cat([x[:, :, :1]] * (kt - 1) + [x], dim=2)
    x = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2))
    return F.conv3d(x, w, b)


def per_frame_conv2d(x, w, b, padding, stride=1):
    n, c, t, h, wd = x.shape
    y = F.conv2d(x.transpose(1, 2).reshape(n * t, c, h, wd), w, b, stride, padding)
    return y.reshape(n, t, *y.shape[1:]).transpose(1, 2)


def downsample(p, prefix, x, compress_time):
    if compress_time:
        # Time: an odd clip keeps frame 0 and averages the rest in pairs; an even one pairs all.
        if x.shape[2] % 2 == 1:
            rest = x[:, :, 1:]
            rest = 0.5 * (rest[:, :, 0::2] + rest[:, :, 1::2])
            x = torch.cat([x[:, :, :1], rest], dim=2)
        else:
            x = 0.5 * (x[:, :, 0::2] + x[:, :, 1::2])
    x = F.pad(x, (0, 1, 0, 1))
    return per_frame_conv2d(x, p[prefix + ".conv.weight"], p[prefix + ".conv.bias"], padding=0, stride=2)


def upsample(p, prefix, x, compress_time):
    def up_space(v):
        return v.repeat_interleave(2, dim=3).repeat_interleave(2, dim=4)

    if compress_time and x.shape[2] > 1:
        # Frame 0 is upsampled in space only, every other frame in time and space.
        x = torch.cat([up_space(x[:, :, :1]), up_space(x[:, :, 1:]).repeat_interleave(2, dim=2)], 2)
    else:
        x = up_space(x)
    return per_frame_conv2d(x, p[prefix + ".conv.weight"], p[prefix + ".conv.bias"], padding=1)


def resize_zq(zq, f):
    """Nearest-resize the latent to f's (T, H, W); frame 0 on its own when T is odd and > 1."""
    t = f.shape[2]
    if t > 1 and t % 2 == 1:
        first = F.interpolate(zq[:, :, :1], size=(1, *f.shape[3:]))
        rest = F.interpolate(zq[:, :, 1:], size=(t - 1, *f.shape[3:]))
        return torch.cat([first, rest], dim=2)
    return F.interpolate(zq, size=f.shape[2:])


def spatial_norm(p, prefix, f, zq):
    zq = resize_zq(zq, f)
    norm = F.group_norm(f, SPATIAL_NORM_GROUPS, p[prefix + ".norm_layer.weight"],
                        p[prefix + ".norm_layer.bias"], EPS)
    return norm * causal_conv(p, prefix + ".conv_y", zq) + causal_conv(p, prefix + ".conv_b", zq)


def resnet(p, prefix, x, groups, zq=None):
    def norm(name, v):
        if zq is None:
            return F.group_norm(v, groups, p[f"{prefix}.{name}.weight"], p[f"{prefix}.{name}.bias"], EPS)
        return spatial_norm(p, f"{prefix}.{name}", v, zq)

    h = causal_conv(p, prefix + ".conv1", F.silu(norm("norm1", x)))
    h = causal_conv(p, prefix + ".conv2", F.silu(norm("norm2", h)))
    if prefix + ".conv_shortcut.weight" in p:
        x = F.conv3d(x, p[prefix + ".conv_shortcut.weight"], p[prefix + ".conv_shortcut.bias"])
    return x + h


def _n_blocks(p, prefix):
    return len({k[len(prefix):].split(".")[0] for k in p if k.startswith(prefix)})


def stvae_encode(p, x, norm_num_groups=32, temporal_compression_ratio=4, **_):
    """Clip (N, 3, T, H, W) in [-1, 1] -> posterior (mean, logvar), each (N, 16, 1 + (T-1)//4, H/8, W/8)."""
    levels = int(temporal_compression_ratio).bit_length() - 1
    h = causal_conv(p, "encoder.conv_in", x)
    n_blocks = _n_blocks(p, "encoder.down_blocks.")
    for i in range(n_blocks):
        pre = f"encoder.down_blocks.{i}"
        for j in range(_n_blocks(p, pre + ".resnets.")):
            h = resnet(p, f"{pre}.resnets.{j}", h, norm_num_groups)
        if i < n_blocks - 1:
            h = downsample(p, pre + ".downsamplers.0", h, compress_time=i < levels)
    for j in range(2):
        h = resnet(p, f"encoder.mid_block.resnets.{j}", h, norm_num_groups)
    h = F.group_norm(h, norm_num_groups, p["encoder.norm_out.weight"], p["encoder.norm_out.bias"], EPS)
    h = causal_conv(p, "encoder.conv_out", F.silu(h))
    mean, logvar = h.chunk(2, dim=1)
    return mean, logvar.clamp(-30.0, 20.0)


def stvae_decode(p, z, norm_num_groups=32, temporal_compression_ratio=4, **_):
    """Latent (N, 16, T, h, w) -> clip (N, 3, 1 + 4 (T-1), 8h, 8w)."""
    levels = int(temporal_compression_ratio).bit_length() - 1
    h = causal_conv(p, "decoder.conv_in", z)
    for j in range(2):
        h = resnet(p, f"decoder.mid_block.resnets.{j}", h, norm_num_groups, zq=z)
    n_blocks = _n_blocks(p, "decoder.up_blocks.")
    for i in range(n_blocks):
        pre = f"decoder.up_blocks.{i}"
        for j in range(_n_blocks(p, pre + ".resnets.")):
            h = resnet(p, f"{pre}.resnets.{j}", h, norm_num_groups, zq=z)
        if i < n_blocks - 1:
            h = upsample(p, pre + ".upsamplers.0", h, compress_time=i < levels)
    h = F.silu(spatial_norm(p, "decoder.norm_out", h, z))
    return causal_conv(p, "decoder.conv_out", h)


def normalize_latent(z):
    return (z - LATENT_SHIFT) * LATENT_SCALE


def denormalize_latent(z):
    return z / LATENT_SCALE + LATENT_SHIFT
