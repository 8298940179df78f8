"""Models built from lavin_fast's ops, loading the released LaVin-DiT weights: the J-DiT
(lavin_fast.models.jdit) and the ST-VAE (lavin_fast.models.stvae)."""

from lavin_fast.models.jdit import LaVinDiT

__all__ = ["LaVinDiT"]
