"""A stand-in VAE so in-context sampling runs without the ST-VAE weights: 8x average pooling with a
fixed 3 -> 16 channel map, and its pseudo-inverse with nearest upsampling. It is NOT the ST-VAE; it
only keeps the image <-> latent plumbing (shapes, 8x spatial factor, value ranges) honest."""

import torch
import torch.nn.functional as F

FACTOR = 8


class ToyVAE:
    def __init__(self, seed=0):
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(16, 3, generator=g, dtype=torch.float64))
        self.enc = q.float()          # (16, 3), orthonormal columns
        self.dec = q.T.float()        # its pseudo-inverse (3, 16)

    def encode(self, x):
        """(B, 3, T, H, W) in [-1, 1] -> (B, 16, T, H/8, W/8), in x's dtype."""
        b, c, t, h, w = x.shape
        # 8x8 means as a reshape: avg_pool3d has no bf16 CPU kernel, mean does (fp32 accumulation).
        pooled = x.reshape(b, c, t, h // FACTOR, FACTOR, w // FACTOR, FACTOR).mean((4, 6))
        return torch.einsum("oc,bcthw->bothw", self.enc.to(x), pooled)

    def decode(self, z):
        """(B, 16, T, h, w) -> (B, 3, T, 8h, 8w)."""
        rgb = torch.einsum("oc,bcthw->bothw", self.dec.to(z), z)
        return F.interpolate(rgb, scale_factor=(1, FACTOR, FACTOR), mode="nearest")
