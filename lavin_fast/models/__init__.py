"""Models built from lavin_fast's fused ops: the J-DiT of LaVin-DiT (lavin_fast.models.jdit)."""

from lavin_fast.models.jdit import LaVinDiT

__all__ = ["LaVinDiT"]
