"""In-context sampling for LaVin-DiT: packed CFG, Euler steps on the released or a uniform grid."""

from lavin_fast.sampling.grids import RELEASED_GRID, time_grid, uniform_grid
from lavin_fast.sampling.incontext import (DEFAULT_CFG_SCALE, InContextRequest, decode_latent,
                                           denormalize_latent, encode_image, normalize_latent, sample)
from lavin_fast.sampling.progress import ProgressBars

__all__ = ["DEFAULT_CFG_SCALE", "InContextRequest", "ProgressBars", "RELEASED_GRID", "decode_latent",
           "denormalize_latent", "encode_image", "normalize_latent", "sample", "time_grid", "uniform_grid"]
