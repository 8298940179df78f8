"""The pure-PyTorch reference J-DiT reproduces the released code's golden output."""

import torch

from jdit_cases import golden
from lavin_fast.models.jdit.patches import patchify, unpatchify
from lavin_fast.reference.jdit import LaVinDiT


def test_reference_matches_golden():
    cfg, sd, (x, t, cond), want = golden()
    model = LaVinDiT(**cfg)
    model.load_state_dict(sd, strict=True)
    with torch.no_grad():
        got = model(x, t, cond)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_reference_float64_agrees_with_float32_golden():
    cfg, sd, (x, t, cond), want = golden()
    model = LaVinDiT(**cfg).double()
    model.load_state_dict(sd, strict=True)
    with torch.no_grad():
        got = model(x.double(), t.double(), cond.double())
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, want.double(), rtol=1e-4, atol=1e-5)


def test_patchify_layout_and_inverse():
    # The token layout both J-DiTs share (lavin_fast.models.jdit.patches), checked on its own here.
    z = torch.randn(2, 16, 3, 6, 10)
    tok = patchify(z)
    assert tok.shape == (2, 3, 3, 5, 64)
    # (H 2) (W 2) -> (2 2 C): value (p1, p2, c) of token (f, i, j) is z[c, f, 2i + p1, 2j + p2].
    assert tok[1, 2, 1, 3, (1 * 2 + 0) * 16 + 5] == z[1, 5, 2, 3, 6]
    torch.testing.assert_close(unpatchify(tok), z)
