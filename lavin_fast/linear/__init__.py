"""y = x W^T + b on the fastest GEMM of the device (oneDNN for fp32 on the CPU)."""

from lavin_fast.linear.modules import Linear
from lavin_fast.linear.ops import linear

__all__ = ["Linear", "linear"]
