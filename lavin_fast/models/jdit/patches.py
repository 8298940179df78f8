"""The J-DiT's token format: 2x2 patches of the VAE's 16-channel latents, 64 values a token.

patchify/unpatchify are pure reshapes (no arithmetic), so the reference J-DiT uses these too; the
token layout they define is checked on its own in tests/test_jdit_reference.py.
"""

PATCH = 2
LATENT_CHANNELS = 16
TOKEN_DIM = PATCH * PATCH * LATENT_CHANNELS  # 64


def patchify(z):
    """(B, C, F, 2H, 2W) latents -> (B, F, H, W, 4C) tokens, `(H 2) (W 2) -> (2 2 C)`."""
    b, c, f, h2, w2 = z.shape
    z = z.reshape(b, c, f, h2 // PATCH, PATCH, w2 // PATCH, PATCH)
    return z.permute(0, 2, 3, 5, 4, 6, 1).reshape(b, f, h2 // PATCH, w2 // PATCH, PATCH * PATCH * c)


def unpatchify(tokens, channels=LATENT_CHANNELS):
    """(B, F, H, W, 4C) tokens -> (B, C, F, 2H, 2W): the inverse of patchify."""
    b, f, h, w, _ = tokens.shape
    z = tokens.reshape(b, f, h, w, PATCH, PATCH, channels)
    return z.permute(0, 6, 1, 2, 4, 3, 5).reshape(b, channels, f, h * PATCH, w * PATCH)
