"""AutoencoderKLSTVAE: the released ST-VAE (constructor, state_dict keys, encode/decode), plus chunked
streaming and tiled spatial decoding."""

import math

import torch
import torch.nn as nn

from lavin_fast.models.stvae.blocks import STVAEDecoder3D, STVAEEncoder3D, _DOWN, _UP
from lavin_fast.models.stvae.stream import decode_chunked, encode_chunked

LATENT_SHIFT = 0.032470703125
LATENT_SCALE = 1.08936170213


def normalize_latent(z):
    """ST-VAE latent -> the DiT's input scale: (z - 0.032470703125) * 1.08936170213."""
    return (z - LATENT_SHIFT) * LATENT_SCALE


def denormalize_latent(z):
    return z / LATENT_SCALE + LATENT_SHIFT


class DiagonalGaussianDistribution:
    """Posterior from the encoder's 2 * latent channels: mean, logvar clamped to [-30, 20]."""

    def __init__(self, parameters, deterministic=False):
        self.parameters = parameters
        self.mean, self.logvar = torch.chunk(parameters, 2, dim=1)
        self.logvar = torch.clamp(self.logvar, -30.0, 20.0)
        self.deterministic = deterministic
        self.std = torch.exp(0.5 * self.logvar)
        self.var = torch.exp(self.logvar)
        if deterministic:
            self.var = self.std = torch.zeros_like(self.mean)

    def sample(self, generator=None):
        noise = torch.randn(self.mean.shape, generator=generator, dtype=self.mean.dtype,
                            device=self.mean.device)
        return self.mean + self.std * noise

    def kl(self, other=None):
        if self.deterministic:
            return torch.tensor([0.0])
        if other is None:
            return 0.5 * torch.sum(self.mean.pow(2) + self.var - 1.0 - self.logvar, dim=[1, 2, 3])
        return 0.5 * torch.sum((self.mean - other.mean).pow(2) / other.var + self.var / other.var
                               - 1.0 - self.logvar + other.logvar, dim=[1, 2, 3])

    def nll(self, sample, dims=(1, 2, 3)):
        if self.deterministic:
            return torch.tensor([0.0])
        return 0.5 * torch.sum(math.log(2.0 * math.pi) + self.logvar
                               + (sample - self.mean).pow(2) / self.var, dim=list(dims))

    def mode(self):
        return self.mean


def _blend(a, b, extent, dim):
    """Linear cross-fade of the last `extent` rows of a into the first `extent` rows of b along dim."""
    extent = min(a.shape[dim], b.shape[dim], extent)
    if extent == 0:
        return b
    w = torch.arange(extent, dtype=b.dtype, device=b.device) / extent
    w = w.view([-1 if d == dim else 1 for d in range(b.dim())])
    head = b.narrow(dim, 0, extent)
    head.copy_(a.narrow(dim, a.shape[dim] - extent, extent) * (1 - w) + head * w)
    return b


class AutoencoderKLSTVAE(nn.Module):
    """The released ST-VAE. encode() -> DiagonalGaussianDistribution, decode() -> clip.

    Beyond the release: encode/decode take `chunk_latents` (stream the clip that many latent frames
    at a time, bounded memory) and `norm` ("exact": whole-clip GroupNorm statistics; "chunk": per-chunk
    statistics, approximate; "two_pass": statistics of a per-chunk pass, approximate); decode takes
    `tile` (spatial tiles, see tiled_decode).
    """

    def __init__(self, in_channels=3, out_channels=3, down_block_types=_DOWN, up_block_types=_UP,
                 block_out_channels=(128, 256, 256, 512), latent_channels=16, layers_per_block=3,
                 act_fn="silu", norm_eps=1e-6, norm_num_groups=32, temporal_compression_ratio=4,
                 use_quant_conv=False, use_post_quant_conv=False, tile_sample_min_size=320,
                 tile_sample_min_size_t=81, load_path=None, use_checkpoint=False):
        super().__init__()
        if len(down_block_types) != len(up_block_types):
            raise ValueError("Number of down blocks must match number of up blocks")
        if len(block_out_channels) != len(down_block_types):
            raise ValueError("Number of block output channels must match number of blocks")
        self.latent_channels = latent_channels
        self.time_factor = int(temporal_compression_ratio)
        common = dict(block_out_channels=block_out_channels, layers_per_block=layers_per_block,
                      act_fn=act_fn, norm_eps=norm_eps, norm_num_groups=norm_num_groups,
                      temporal_compression_ratio=temporal_compression_ratio,
                      gradient_checkpointing=use_checkpoint)
        self.encoder = STVAEEncoder3D(in_channels, latent_channels, down_block_types, **common)
        self.decoder = STVAEDecoder3D(latent_channels, out_channels, up_block_types, **common)
        # As released (quant_conv sized from out_channels): unused by the released configuration.
        self.quant_conv = nn.Conv3d(2 * out_channels, 2 * out_channels, 1) if use_quant_conv else None
        self.post_quant_conv = nn.Conv3d(out_channels, out_channels, 1) if use_post_quant_conv else None
        self.use_slicing = False
        self.use_tiling = False
        self.tile_sample_min_size = tile_sample_min_size
        self.tile_latent_min_size = tile_sample_min_size // (2 ** (len(block_out_channels) - 1))
        self.tile_overlap_factor = 0.25
        self.tile_sample_min_size_t = tile_sample_min_size_t
        self.tile_latent_min_size_t = (tile_sample_min_size_t - 1) // 4 + 1
        if load_path is not None:
            state = torch.load(load_path, map_location="cpu")
            self.load_state_dict(state.get("state_dict", state))
        # The release freezes the VAE on construction.
        for p in self.parameters():
            p.requires_grad = False
        self.eval()

    def enable_tiling(self, use_tiling=True):
        self.use_tiling = use_tiling

    def disable_tiling(self):
        self.enable_tiling(False)

    @torch.no_grad()
    def encode(self, x, chunk_latents=None, norm="exact"):
        if chunk_latents is None:
            h = self.encoder(x)
        else:
            h = encode_chunked(self.encoder, x, chunk_latents, norm)
        if self.quant_conv is not None:
            h = self.quant_conv(h)
        return DiagonalGaussianDistribution(h)

    @torch.no_grad()
    def decode(self, z, chunk_latents=None, norm="exact", tile=None):
        if self.post_quant_conv is not None:
            z = self.post_quant_conv(z)
        if tile is not None or (self.use_tiling and max(z.shape[-2:]) > self.tile_latent_min_size):
            return self.tiled_decode(z, tile or self.tile_latent_min_size, chunk_latents, norm)
        return self._decode(z, chunk_latents, norm)

    def _decode(self, z, chunk_latents, norm):
        if chunk_latents is None:
            return self.decoder(z)
        return decode_chunked(self.decoder, z, chunk_latents, norm, self.time_factor)

    def tiled_decode(self, z, tile, chunk_latents=None, norm="exact"):
        """Decode overlapping tile x tile latent tiles and cross-fade the overlaps linearly, as the
        release and diffusers do (overlap tile_overlap_factor). Unlike the release, tiles stop once
        the frame is covered and the last tile in a row or column is kept whole, so one tile covering
        the frame is exactly the untiled decode. Each tile has its own GroupNorm statistics and zero
        padding at its borders, so seams differ from one pass (measured in docs/stvae.md)."""
        up = 2 ** (len(self.decoder.up_blocks) - 1)
        stride = max(1, int(tile * (1 - self.tile_overlap_factor)))
        blend = (tile - stride) * up

        def starts(n):
            s = [0]
            while s[-1] + tile < n:
                s.append(s[-1] + stride)
            return s

        rows_at, cols_at = starts(z.shape[3]), starts(z.shape[4])
        rows = [[self._decode(z[:, :, :, i:i + tile, j:j + tile], chunk_latents, norm) for j in cols_at]
                for i in rows_at]
        out_rows = []
        for i, row in enumerate(rows):
            parts = []
            for j, t in enumerate(row):
                if i > 0:
                    t = _blend(rows[i - 1][j], t, blend, 3)
                if j > 0:
                    t = _blend(row[j - 1], t, blend, 4)
                h = stride * up if i < len(rows) - 1 else t.shape[3]
                w = stride * up if j < len(row) - 1 else t.shape[4]
                parts.append(t[:, :, :, :h, :w])
            out_rows.append(torch.cat(parts, dim=4))
        return torch.cat(out_rows, dim=3)

    def forward(self, sample, sample_posterior=True):
        posterior = self.encode(sample)
        z = posterior.sample() if sample_posterior else posterior.mode()
        return self.decode(z), posterior
