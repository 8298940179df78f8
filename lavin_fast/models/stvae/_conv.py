"""The one place the ST-VAE imports its causal convolution from."""

from lavin_fast.conv import CausalConv3d, causal_conv3d  # noqa: F401
