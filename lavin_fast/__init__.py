"""lavin_fast: fast kernels and drop-in modules for LaVin-DiT-style vision diffusion transformers.

Every op takes packed tokens plus ``cu_seqlens`` (NaViT-style) or padded batches, and has a
pure-PyTorch reference in :mod:`lavin_fast.reference`.
"""

from lavin_fast.norms import (
    AdaRMSNorm,
    GatedRMSResidual,
    JDiTModulation,
    RMSNorm,
    gated_rms_residual,
    rms_norm,
    rms_norm_modulate,
)

__version__ = "0.1.0"

__all__ = [
    "AdaRMSNorm",
    "GatedRMSResidual",
    "JDiTModulation",
    "RMSNorm",
    "gated_rms_residual",
    "rms_norm",
    "rms_norm_modulate",
]
from lavin_fast.attention import TileMask, flash_attn_varlen_func, varlen_attention  # noqa: E402,F401
from lavin_fast.rope import QKNormRoPE, RotaryEmbedding3D, qk_norm_rope  # noqa: E402,F401
from lavin_fast import conv  # noqa: E402,F401
