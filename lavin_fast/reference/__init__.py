"""Pure-PyTorch references of every lavin_fast op: the specification the kernels are tested against.

Written for clarity, not speed. They compute in float32 for half-precision inputs (as the kernels
do) and in float64 when given float64, which is how the tests use them.
"""

from lavin_fast.reference.norms import gated_rms_residual, rms_norm, rms_norm_modulate

__all__ = ["gated_rms_residual", "rms_norm", "rms_norm_modulate"]
from lavin_fast.reference.attention import varlen_attention  # noqa: E402
from lavin_fast.reference.rope import apply_rope_3d, qk_norm_rope  # noqa: E402

__all__ += ["apply_rope_3d", "qk_norm_rope"]
from lavin_fast.reference.conv import causal_conv3d  # noqa: E402
