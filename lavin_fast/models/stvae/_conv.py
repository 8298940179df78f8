"""The one place the ST-VAE imports its causal convolution from."""

from lavin_fast.models.stvae._conv_standin import CausalConv3d, causal_conv3d  # noqa: F401
