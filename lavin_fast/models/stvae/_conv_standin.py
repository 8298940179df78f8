"""TEMPORARY stand-in for lavin_fast.conv (branch conv) with the same API; deleted after the merge."""

import torch
import torch.nn as nn
import torch.nn.functional as F


def _triple(v):
    return (v,) * 3 if isinstance(v, int) else tuple(v)


def _conv3d(x, weight, bias, stride, padding):
    if x.device.type == "cpu" and x.dtype == torch.float32 and torch.backends.mkldnn.is_available():
        return torch.mkldnn_convolution(x, weight, bias, padding, stride, (1, 1, 1), 1)
    return F.conv3d(x, weight, bias, stride, padding)


def causal_conv3d(x, weight, bias=None, stride=1, spatial_padding=0, temporal_pad="replicate",
                  cache=None, return_cache=False):
    kt = weight.shape[2]
    ph, pw = (spatial_padding, spatial_padding) if isinstance(spatial_padding, int) else spatial_padding
    if kt > 1:
        if cache is not None:
            head = cache
        elif temporal_pad == "replicate":
            head = x[:, :, :1].expand(-1, -1, kt - 1, -1, -1)
        else:
            head = x.new_zeros(x.shape[0], x.shape[1], kt - 1, *x.shape[3:])
        xp = torch.cat([head, x], dim=2)
    else:
        xp = x
    out = _conv3d(F.pad(xp, (pw, pw, ph, ph)), weight, bias, _triple(stride), (0, 0, 0))
    if not return_cache:
        return out
    new_cache = xp[:, :, xp.shape[2] - (kt - 1):].clone() if kt > 1 else None
    return out, new_cache


class CausalConv3d(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride=1, dilation=1, pad_mode="constant"):
        super().__init__()
        kt, kh, kw = _triple(kernel_size)
        self.time_kernel_size, self.height_pad, self.width_pad = kt, kh // 2, kw // 2
        self.conv = nn.Conv3d(in_channels, out_channels, (kt, kh, kw), stride=(stride, 1, 1),
                              dilation=(dilation, 1, 1))

    def forward(self, inputs, conv_cache=None):
        return causal_conv3d(inputs, self.conv.weight, self.conv.bias,
                             spatial_padding=(self.height_pad, self.width_pad), cache=conv_cache,
                             return_cache=True)
