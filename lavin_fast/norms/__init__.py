"""RMSNorm family: plain RMSNorm (sandwich norms, QK-norm), the AdaRN pre-norm and the gated residual
post-norm, on padded or packed (cu_seqlens) tokens."""

from lavin_fast.norms.modules import AdaRMSNorm, GatedRMSResidual, JDiTModulation, RMSNorm
from lavin_fast.norms.ops import gated_rms_residual, rms_norm, rms_norm_modulate

__all__ = ["AdaRMSNorm", "GatedRMSResidual", "JDiTModulation", "RMSNorm", "gated_rms_residual",
           "rms_norm", "rms_norm_modulate"]
