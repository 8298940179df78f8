"""CausalConv3d: drop-in for diffusers' CogVideoXCausalConv3d and the released STVAECausalConv3d."""

import torch
import torch.nn.functional as F
from torch import nn

from lavin_fast.conv.ops import causal_conv3d


class CausalConv3d(nn.Module):
    """Causal 3-D convolution with CogVideoXCausalConv3d's constructor, parameters and forward.

    kernel_size int or (k_t, k_h, k_w); `stride` and `dilation` act in time only (as in diffusers:
    the conv's stride is (stride, 1, 1)), or a 3-tuple stride acts as given. Parameters live in
    `self.conv` (an nn.Conv3d: `conv.weight`, `conv.bias`), so state_dicts of both load as is.

    pad_mode "constant" (diffusers' default; the ST-VAE's): k_t - 1 copies of the first frame (or
    the cache) before the clip, zeros of (k - 1) // 2 in space. forward(inputs, conv_cache) returns
    (output, new conv_cache): the last k_t - 1 frames of the padded input.
    pad_mode "replicate": F.pad replicate in time and space (diffusers' other mode; no cache, returns
    None), computed by pad + conv3d as diffusers does.
    Temporal dilation > 1 also runs pad + conv3d with diffusers' k_t - 1 padding.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, dilation=1, pad_mode="constant"):
        super().__init__()
        if isinstance(kernel_size, int):
            kernel_size = (kernel_size,) * 3
        k_t, k_h, k_w = kernel_size
        self.pad_mode = pad_mode
        self.time_kernel_size = k_t
        self.time_pad = k_t - 1
        self.height_pad = (k_h - 1) // 2
        self.width_pad = (k_w - 1) // 2
        self.time_causal_padding = (self.width_pad, self.width_pad, self.height_pad, self.height_pad,
                                    self.time_pad, 0)
        self.temporal_dim = 2
        stride = stride if isinstance(stride, tuple) else (stride, 1, 1)
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size, stride=stride, dilation=(dilation, 1, 1))

    def forward(self, inputs, conv_cache=None):
        conv = self.conv
        if self.pad_mode == "replicate":
            return conv(F.pad(inputs, self.time_causal_padding, mode="replicate")), None
        if conv.dilation != (1, 1, 1):
            padded = torch.cat(([conv_cache] if conv_cache is not None
                                else [inputs[:, :, :1]] * self.time_pad) + [inputs], dim=2)
            new_cache = padded[:, :, padded.shape[2] - self.time_pad:].clone()
            padded = F.pad(padded, (self.width_pad, self.width_pad, self.height_pad, self.height_pad))
            return conv(padded), new_cache
        weight, bias = conv.weight, conv.bias
        if weight.dtype != inputs.dtype:  # autocast-free mixed use: compute in the input's dtype
            weight = weight.to(inputs.dtype)
            bias = None if bias is None else bias.to(inputs.dtype)
        return causal_conv3d(inputs, weight, bias, stride=list(conv.stride),
                             spatial_padding=(self.height_pad, self.width_pad), temporal_pad="replicate",
                             cache=conv_cache, return_cache=True)
