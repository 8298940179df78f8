"""The LaVin-DiT ST-VAE (CogVideoX-style causal video VAE) with the released names and keys."""

from lavin_fast.models.stvae.autoencoder import (
    LATENT_SCALE,
    LATENT_SHIFT,
    AutoencoderKLSTVAE,
    DiagonalGaussianDistribution,
    denormalize_latent,
    normalize_latent,
)
from lavin_fast.models.stvae.blocks import (
    STVAEDecoder3D,
    STVAEDownBlock3D,
    STVAEEncoder3D,
    STVAEMidBlock3D,
    STVAEUpBlock3D,
)
from lavin_fast.models.stvae.layers import (
    STVAECausalConv3d,
    STVAEDownsample3D,
    STVAEResnetBlock3D,
    STVAESpatialNorm3D,
    STVAEUpsample3D,
)
from lavin_fast.models.stvae.stream import decode_chunked, encode_chunked

__all__ = [
    "AutoencoderKLSTVAE", "DiagonalGaussianDistribution", "LATENT_SCALE", "LATENT_SHIFT",
    "STVAECausalConv3d", "STVAEDecoder3D", "STVAEDownBlock3D", "STVAEDownsample3D", "STVAEEncoder3D",
    "STVAEMidBlock3D", "STVAEResnetBlock3D", "STVAESpatialNorm3D", "STVAEUpBlock3D", "STVAEUpsample3D",
    "decode_chunked", "denormalize_latent", "encode_chunked", "normalize_latent",
]
