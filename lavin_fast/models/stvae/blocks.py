"""ST-VAE blocks, encoder and decoder with the released class names and constructor arguments."""

import math

import torch
import torch.nn as nn
import torch.utils.checkpoint as checkpoint

from lavin_fast.models.stvae import state as S
from lavin_fast.models.stvae.layers import (
    STVAECausalConv3d,
    STVAEDownsample3D,
    STVAEResnetBlock3D,
    STVAESpatialNorm3D,
    STVAEUpsample3D,
    silu,
)


def _run(module, checkpointed, *args):
    # Activation checkpointing only while training with autograd; never inside a streaming chunk
    # (recomputation would advance the conv caches twice).
    if checkpointed and torch.is_grad_enabled() and S.current() is None:
        return checkpoint.checkpoint(module, *args, use_reentrant=False)
    return module(*args)


class _ResnetStack(nn.Module):
    def forward(self, hidden_states, temb=None, zq=None):
        for resnet in self.resnets:
            hidden_states = _run(resnet, self.gradient_checkpointing, hidden_states, temb, zq)
        for sampler in (getattr(self, "downsamplers", None) or getattr(self, "upsamplers", None) or ()):
            hidden_states = sampler(hidden_states)
        return hidden_states


class STVAEDownBlock3D(_ResnetStack):
    def __init__(self, in_channels, out_channels, temb_channels, dropout=0.0, num_layers=1,
                 resnet_eps=1e-6, resnet_act_fn="swish", resnet_groups=32, add_downsample=True,
                 downsample_padding=0, compress_time=False, pad_mode="first", gradient_checkpointing=False):
        super().__init__()
        self.resnets = nn.ModuleList([
            STVAEResnetBlock3D(in_channels if i == 0 else out_channels, out_channels, dropout=dropout,
                               temb_channels=temb_channels, groups=resnet_groups, eps=resnet_eps,
                               non_linearity=resnet_act_fn, pad_mode=pad_mode)
            for i in range(num_layers)])
        self.downsamplers = None
        if add_downsample:
            self.downsamplers = nn.ModuleList([STVAEDownsample3D(
                out_channels, out_channels, padding=downsample_padding, compress_time=compress_time)])
        self.gradient_checkpointing = gradient_checkpointing


class STVAEMidBlock3D(_ResnetStack):
    def __init__(self, in_channels, temb_channels, dropout=0.0, num_layers=1, resnet_eps=1e-6,
                 resnet_act_fn="swish", resnet_groups=32, spatial_norm_dim=None, pad_mode="first",
                 gradient_checkpointing=False):
        super().__init__()
        self.resnets = nn.ModuleList([
            STVAEResnetBlock3D(in_channels, in_channels, dropout=dropout, temb_channels=temb_channels,
                               groups=resnet_groups, eps=resnet_eps, spatial_norm_dim=spatial_norm_dim,
                               non_linearity=resnet_act_fn, pad_mode=pad_mode)
            for _ in range(num_layers)])
        self.gradient_checkpointing = gradient_checkpointing


class STVAEUpBlock3D(_ResnetStack):
    def __init__(self, in_channels, out_channels, temb_channels, dropout=0.0, num_layers=1,
                 resnet_eps=1e-6, resnet_act_fn="swish", resnet_groups=32, spatial_norm_dim=16,
                 add_upsample=True, upsample_padding=1, compress_time=False, pad_mode="first",
                 gradient_checkpointing=False):
        super().__init__()
        self.resnets = nn.ModuleList([
            STVAEResnetBlock3D(in_channels if i == 0 else out_channels, out_channels, dropout=dropout,
                               temb_channels=temb_channels, groups=resnet_groups, eps=resnet_eps,
                               non_linearity=resnet_act_fn, spatial_norm_dim=spatial_norm_dim,
                               pad_mode=pad_mode)
            for i in range(num_layers)])
        self.upsamplers = None
        if add_upsample:
            self.upsamplers = nn.ModuleList([STVAEUpsample3D(
                out_channels, out_channels, padding=upsample_padding, compress_time=compress_time)])
        self.gradient_checkpointing = gradient_checkpointing


_DOWN = ("STVAEDownBlock3D",) * 4
_UP = ("STVAEUpBlock3D",) * 4


class STVAEEncoder3D(nn.Module):
    def __init__(self, in_channels=3, out_channels=16, down_block_types=_DOWN,
                 block_out_channels=(128, 256, 256, 512), layers_per_block=3, act_fn="silu",
                 norm_eps=1e-6, norm_num_groups=32, dropout=0.0, pad_mode="first",
                 temporal_compression_ratio=4, gradient_checkpointing=False):
        super().__init__()
        levels = int(math.log2(temporal_compression_ratio))
        self.conv_in = STVAECausalConv3d(in_channels, block_out_channels[0], kernel_size=3, pad_mode=pad_mode)
        self.down_blocks = nn.ModuleList()
        out_ch = block_out_channels[0]
        for i, kind in enumerate(down_block_types):
            if kind != "STVAEDownBlock3D":
                raise ValueError(f"down_block_types[{i}] must be 'STVAEDownBlock3D', got {kind!r}")
            in_ch, out_ch = out_ch, block_out_channels[i]
            self.down_blocks.append(STVAEDownBlock3D(
                in_ch, out_ch, temb_channels=0, dropout=dropout, num_layers=layers_per_block,
                resnet_eps=norm_eps, resnet_act_fn=act_fn, resnet_groups=norm_num_groups,
                add_downsample=i != len(block_out_channels) - 1, compress_time=i < levels,
                gradient_checkpointing=gradient_checkpointing))
        self.mid_block = STVAEMidBlock3D(
            block_out_channels[-1], temb_channels=0, dropout=dropout, num_layers=2, resnet_eps=norm_eps,
            resnet_act_fn=act_fn, resnet_groups=norm_num_groups, pad_mode=pad_mode,
            gradient_checkpointing=gradient_checkpointing)
        self.norm_out = nn.GroupNorm(norm_num_groups, block_out_channels[-1], eps=1e-6)
        self.conv_act = nn.SiLU()
        self.conv_out = STVAECausalConv3d(block_out_channels[-1], 2 * out_channels, kernel_size=3,
                                          pad_mode=pad_mode)
        self.gradient_checkpointing = gradient_checkpointing

    def forward(self, sample, temb=None):
        h = self.conv_in(sample)
        for block in self.down_blocks:
            h = block(h, temb, None)
        h = self.mid_block(h, temb, None)
        return self.conv_out(silu(S.group_norm(self.norm_out, h)))


class STVAEDecoder3D(nn.Module):
    def __init__(self, in_channels=16, out_channels=3, up_block_types=_UP,
                 block_out_channels=(128, 256, 256, 512), layers_per_block=3, act_fn="silu",
                 norm_eps=1e-6, norm_num_groups=32, dropout=0.0, pad_mode="first",
                 temporal_compression_ratio=4, gradient_checkpointing=False):
        super().__init__()
        rev = list(reversed(block_out_channels))
        levels = int(math.log2(temporal_compression_ratio))
        self.conv_in = STVAECausalConv3d(in_channels, rev[0], kernel_size=3, pad_mode=pad_mode)
        self.mid_block = STVAEMidBlock3D(
            rev[0], temb_channels=0, num_layers=2, resnet_eps=norm_eps, resnet_act_fn=act_fn,
            resnet_groups=norm_num_groups, spatial_norm_dim=in_channels, pad_mode=pad_mode,
            gradient_checkpointing=gradient_checkpointing)
        self.up_blocks = nn.ModuleList()
        out_ch = rev[0]
        for i, kind in enumerate(up_block_types):
            if kind != "STVAEUpBlock3D":
                raise ValueError(f"up_block_types[{i}] must be 'STVAEUpBlock3D', got {kind!r}")
            prev, out_ch = out_ch, rev[i]
            self.up_blocks.append(STVAEUpBlock3D(
                prev, out_ch, temb_channels=0, dropout=dropout, num_layers=layers_per_block + 1,
                resnet_eps=norm_eps, resnet_act_fn=act_fn, resnet_groups=norm_num_groups,
                spatial_norm_dim=in_channels, add_upsample=i != len(block_out_channels) - 1,
                compress_time=i < levels, pad_mode=pad_mode, gradient_checkpointing=gradient_checkpointing))
        self.norm_out = STVAESpatialNorm3D(rev[-1], in_channels)
        self.conv_act = nn.SiLU()
        self.conv_out = STVAECausalConv3d(rev[-1], out_channels, kernel_size=3, pad_mode=pad_mode)
        self.gradient_checkpointing = gradient_checkpointing

    def forward(self, sample, temb=None):
        h = self.conv_in(sample)
        h = self.mid_block(h, temb, sample)
        for block in self.up_blocks:
            h = block(h, temb, sample)
        return self.conv_out(silu(self.norm_out(h, sample)))
