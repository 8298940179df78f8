"""lavin_fast: fast kernels and drop-in modules for LaVin-DiT-style vision diffusion transformers.

Every sequence op takes packed tokens plus ``cu_seqlens`` (NaViT-style) or padded batches, and has a
pure-PyTorch reference in :mod:`lavin_fast.reference`. Areas: :mod:`lavin_fast.norms`,
:mod:`lavin_fast.attention`, :mod:`lavin_fast.rope`, :mod:`lavin_fast.conv`, :mod:`lavin_fast.linear`, :mod:`lavin_fast.models`
(J-DiT, ST-VAE), :mod:`lavin_fast.packing`, :mod:`lavin_fast.sampling`.
"""

from lavin_fast._native import ExtensionUnavailable

# Without its compiled extension the package still imports, so that `lavin-fast doctor` can say what is
# wrong; the public names then raise the ImportError that says how to build it (__getattr__ below).
_extension_error = None
try:
    from lavin_fast.attention import TileMask, flash_attn_varlen_func, varlen_attention
    from lavin_fast.conv import CausalConv3d, causal_conv3d
    from lavin_fast.linear import Linear, linear
    from lavin_fast.norms import (
        AdaRMSNorm,
        GatedRMSResidual,
        JDiTModulation,
        RMSNorm,
        gated_rms_residual,
        rms_norm,
        rms_norm_modulate,
    )
    from lavin_fast.rope import QKNormRoPE, RotaryEmbedding3D, qk_norm_rope
except ExtensionUnavailable as e:
    _extension_error = str(e)

__version__ = "0.1.0"

__all__ = [
    "AdaRMSNorm",
    "CausalConv3d",
    "GatedRMSResidual",
    "JDiTModulation",
    "Linear",
    "QKNormRoPE",
    "RMSNorm",
    "RotaryEmbedding3D",
    "TileMask",
    "causal_conv3d",
    "flash_attn_varlen_func",
    "gated_rms_residual",
    "linear",
    "qk_norm_rope",
    "rms_norm",
    "rms_norm_modulate",
    "varlen_attention",
]


def __getattr__(name):  # only called for names not bound above
    if _extension_error is not None and name in __all__:
        raise ExtensionUnavailable(_extension_error)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
