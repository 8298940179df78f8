"""Pure-PyTorch references of every lavin_fast op: the specification the kernels are tested against.

Written for clarity, not speed. They compute in float32 for half-precision inputs (as the kernels
do) and in float64 when given float64, which is how the tests use them. The reference models
(J-DiT, ST-VAE) live in :mod:`lavin_fast.reference.jdit` and :mod:`lavin_fast.reference.stvae`.
"""

from lavin_fast.reference.attention import varlen_attention
from lavin_fast.reference.conv import causal_conv3d
from lavin_fast.reference.linear import linear
from lavin_fast.reference.norms import gated_rms_residual, rms_norm, rms_norm_modulate
from lavin_fast.reference.rope import apply_rope_3d, qk_norm_rope

__all__ = ["apply_rope_3d", "causal_conv3d", "gated_rms_residual", "linear", "qk_norm_rope", "rms_norm",
           "rms_norm_modulate", "varlen_attention"]
