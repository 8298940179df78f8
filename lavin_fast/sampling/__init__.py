"""In-context sampling for LaVin-DiT: packed CFG, Euler steps on the released or a uniform grid."""

from lavin_fast.sampling.grids import RELEASED_GRID, RELEASED_GRIDS, grid_of_points, time_grid, uniform_grid
from lavin_fast.sampling.incontext import (DEFAULT_CFG_SCALE, InContextRequest, decode_latent,
                                           denormalize_latent, encode_image, normalize_latent, sample)

__all__ = ["DEFAULT_CFG_SCALE", "InContextRequest", "RELEASED_GRID", "RELEASED_GRIDS", "decode_latent",
           "denormalize_latent", "encode_image", "grid_of_points", "normalize_latent", "sample", "time_grid",
           "uniform_grid"]
