"""ST-VAE layers with the released class names, constructor arguments, attribute and parameter names.

Each computes the released function (see lavin_fast/reference/stvae.py) and, inside a streaming
chunk (state.py), the same function restricted to the chunk. Memory-saving choices: SiLU and the
residual add run in place when no gradient is recorded, the spatial norm's 1x1x1 convs run at latent
resolution and broadcast (a pointwise conv commutes with nearest resizing), and frames duplicated by
temporal upsampling are convolved once.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F

from lavin_fast.conv import CausalConv3d
from lavin_fast.models.stvae import state as S


def conv3d(x, weight, bias, stride, padding):
    """F.conv3d, but always oneDNN for fp32 on CPU: ATen's heuristic sends batch-1 inputs with
    N*C*T*H <= 20480 (short streaming chunks) to its im2col path, 5x slower with a large buffer."""
    if x.device.type == "cpu" and x.dtype == torch.float32 and torch.backends.mkldnn.is_available():
        return torch.mkldnn_convolution(x.contiguous(), weight.contiguous(), bias, padding, stride,
                                        (1, 1, 1), 1)
    return F.conv3d(x, weight, bias, stride, padding)


def silu(x, owned=True):
    """SiLU, in place on tensors this module allocated when autograd is not recording."""
    return F.silu(x, inplace=owned and not torch.is_grad_enabled())


def _norm(norm, x, zq):
    return S.group_norm(norm, x) if zq is None else norm(x, zq)


class STVAECausalConv3d(CausalConv3d):
    """Released causal conv: k_t - 1 copies of frame 0 prepended in time, zeros in space.

    Unlike lavin_fast.conv.CausalConv3d (diffusers-style, returns (output, cache)), forward returns
    the output only, as the release does; streaming caches live in the chunk state instead.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, dilation=1, pad_mode="constant"):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, dilation=dilation,
                         pad_mode=pad_mode)
        kt, kh, kw = self.conv.kernel_size
        self.pad_mode = pad_mode
        self.time_kernel_size, self.height_pad, self.width_pad = kt, kh // 2, kw // 2
        self.time_pad = dilation * (kt - 1) + (1 - stride)
        self.time_causal_padding = (kw // 2, kw // 2, kh // 2, kh // 2, self.time_pad, 0)
        self.temporal_dim = 2
        self.conv_cache = None

    def forward(self, inputs):
        return S.causal(self, inputs)


def _broadcast_modulate(nf, y, b, inplace):
    """nf * resize(y) + resize(b) with nearest resizing as a broadcast over integer-factor blocks."""
    n, c, t, h, w = nf.shape
    tz, hz, wz = y.shape[2:]
    if t % tz or h % hz or w % wz:
        y, b = F.interpolate(y, size=(t, h, w)), F.interpolate(b, size=(t, h, w))
        tz, hz, wz = t, h, w
    shape8 = (n, c, tz, t // tz, hz, h // hz, wz, w // wz)
    small = (n, c, tz, 1, hz, 1, wz, 1)
    v, y, b = nf.view(shape8), y.reshape(small), b.reshape(small)
    if inplace:
        return nf, v.mul_(y).add_(b)
    return torch.addcmul(b, v, y).reshape(nf.shape), None


class STVAESpatialNorm3D(nn.Module):
    """GroupNorm(32 groups, as released) of f, scaled and shifted by 1x1x1 causal convs of the latent."""

    def __init__(self, f_channels, zq_channels):
        super().__init__()
        self.norm_layer = nn.GroupNorm(num_channels=f_channels, num_groups=32, eps=1e-6, affine=True)
        self.conv_y = STVAECausalConv3d(zq_channels, f_channels, kernel_size=1, stride=1)
        self.conv_b = STVAECausalConv3d(zq_channels, f_channels, kernel_size=1, stride=1)

    def forward(self, f, zq):
        st = S.current()
        t = f.shape[2]
        split = st.first if st is not None else (t > 1 and t % 2 == 1)
        y, b = S.causal(self.conv_y, zq), S.causal(self.conv_b, zq)
        nf = S.group_norm(self.norm_layer, f)
        inplace = not torch.is_grad_enabled()
        if not split or zq.shape[2] == 1 and t == 1:
            out, _ = _broadcast_modulate(nf, y, b, inplace)
            return out
        if not inplace:
            first, _ = _broadcast_modulate(nf[:, :, :1], y[:, :, :1], b[:, :, :1], False)
            if t == 1:
                return first
            rest, _ = _broadcast_modulate(nf[:, :, 1:], y[:, :, 1:], b[:, :, 1:], False)
            return torch.cat([first, rest], dim=2)
        _broadcast_modulate(nf[:, :, :1], y[:, :, :1], b[:, :, :1], True)
        if t > 1:
            _broadcast_modulate(nf[:, :, 1:], y[:, :, 1:], b[:, :, 1:], True)
        return nf


class STVAEResnetBlock3D(nn.Module):
    def __init__(self, in_channels, out_channels=None, dropout=0.0, temb_channels=512, groups=32,
                 eps=1e-6, non_linearity="swish", conv_shortcut=False, spatial_norm_dim=None,
                 pad_mode="first"):
        super().__init__()
        out_channels = out_channels or in_channels
        self.in_channels, self.out_channels = in_channels, out_channels
        self.nonlinearity = nn.SiLU()  # the release's "swish"; forward uses F.silu
        self.use_conv_shortcut = conv_shortcut
        if spatial_norm_dim is None:
            self.norm1 = nn.GroupNorm(num_channels=in_channels, num_groups=groups, eps=eps)
            self.norm2 = nn.GroupNorm(num_channels=out_channels, num_groups=groups, eps=eps)
        else:
            self.norm1 = STVAESpatialNorm3D(in_channels, spatial_norm_dim)
            self.norm2 = STVAESpatialNorm3D(out_channels, spatial_norm_dim)
        self.conv1 = STVAECausalConv3d(in_channels, out_channels, kernel_size=3, pad_mode=pad_mode)
        if temb_channels > 0:
            self.temb_proj = nn.Linear(temb_channels, out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = STVAECausalConv3d(out_channels, out_channels, kernel_size=3, pad_mode=pad_mode)
        if in_channels != out_channels:
            if conv_shortcut:
                self.conv_shortcut = STVAECausalConv3d(in_channels, out_channels, kernel_size=3,
                                                       pad_mode=pad_mode)
            else:
                self.conv_shortcut = nn.Conv3d(in_channels, out_channels, kernel_size=1)

    def forward(self, inputs, temb=None, zq=None):
        h = self.conv1(silu(_norm(self.norm1, inputs, zq)))
        if temb is not None:
            h = h + self.temb_proj(F.silu(temb))[:, :, None, None, None]
        # Rebound before conv2 runs, so conv1's output is freed once norm2 has read it: one activation
        # fewer alive at the encoder's and decoder's peak.
        h = self.dropout(silu(_norm(self.norm2, h, zq)))
        h = self.conv2(h)
        if self.in_channels != self.out_channels:
            inputs = self.conv_shortcut(inputs)
        return h.add_(inputs) if not torch.is_grad_enabled() else h + inputs


class STVAEDownsample3D(nn.Module):
    """Optional 2x average pooling in time (frame 0 kept alone when the clip is odd), then a per-frame
    Conv2d(k3, s2) after zero padding (0, 1, 0, 1)."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=2, padding=0, compress_time=False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, stride=stride,
                              padding=padding)
        self.compress_time = compress_time

    def forward(self, x):
        if self.compress_time:
            st = S.current()
            keep_first = (x.shape[2] % 2 == 1) if st is None else (st.first and st.keep_first[id(self)])
            if keep_first:
                rest = x[:, :, 1:]
                rest = (rest[:, :, 0::2] + rest[:, :, 1::2]) * 0.5
                x = torch.cat([x[:, :, :1], rest], dim=2)
            else:
                x = (x[:, :, 0::2] + x[:, :, 1::2]) * 0.5
        x = F.pad(x, (0, 1, 0, 1))
        # A (1, k, k) conv3d is the per-frame conv2d without moving frames into the batch.
        conv = self.conv
        return conv3d(x, conv.weight.unsqueeze(2), conv.bias, (1, *conv.stride), (0, *conv.padding))


class STVAEUpsample3D(nn.Module):
    """2x nearest upsampling in space (and in time for all frames but frame 0 when compress_time),
    then a per-frame Conv2d(k3, p1)."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1, compress_time=False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=kernel_size, stride=stride,
                              padding=padding)
        self.compress_time = compress_time

    def _conv_up_space(self, x):
        x = x.repeat_interleave(2, dim=3).repeat_interleave(2, dim=4)
        conv = self.conv
        return conv3d(x, conv.weight.unsqueeze(2), conv.bias, (1, *conv.stride), (0, *conv.padding))

    def forward(self, inputs):
        if not self.compress_time:
            return self._conv_up_space(inputs)
        st = S.current()
        t = inputs.shape[2]
        # One pass: frame 0 is always special (a 1-frame clip is upsampled in space only).
        split = True if st is None else st.first
        if split and t == 1:
            return self._conv_up_space(inputs)
        # The frames doubled in time are equal, so each is convolved once and then repeated.
        if not split:
            return self._conv_up_space(inputs).repeat_interleave(2, dim=2)
        first = self._conv_up_space(inputs[:, :, :1])
        rest = self._conv_up_space(inputs[:, :, 1:])
        out = first.new_empty(first.shape[0], first.shape[1], 1 + 2 * (t - 1), *first.shape[3:])
        out[:, :, :1] = first
        out[:, :, 1:].unflatten(2, (t - 1, 2)).copy_(rest.unsqueeze(3))
        return out
