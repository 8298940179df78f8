"""ST-VAE streaming (chunked) encode/decode and tiled decoding."""

import pytest
import torch

from lavin_fast.models.stvae import decode_chunked, encode_chunked
from lavin_fast.models.stvae.stream import encoder_plan
from tests.stvae_helpers import one_thread, random_model, rel_err  # noqa: F401


@pytest.fixture(scope="module")
def model():
    return random_model(seed=1)


def test_encoder_plan_groups_latent_frames():
    enc = random_model().encoder
    assert encoder_plan(enc, 9)[1] == [(0, 1), (1, 5), (5, 9)]
    assert encoder_plan(enc, 8)[1] == [(0, 4), (4, 8)]
    assert encoder_plan(enc, 7)[1] == [(0, 3), (3, 7)]   # 7 -> 4 (frame 0 alone) -> 2 (pairs)
    assert encoder_plan(enc, 1)[1] == [(0, 1)]


# (frames, latent frames per chunk): chunks of 1 and 2, uneven splits, even and odd clips, T = 1.
@pytest.mark.parametrize("frames,chunk", [(13, 1), (13, 2), (13, 3), (8, 1), (7, 1), (1, 1), (10, 2)])
def test_exact_streaming_encode_equals_one_pass(model, frames, chunk):
    x = torch.randn(1, 3, frames, 16, 16)
    with torch.no_grad():
        whole = model.encoder(x)
        streamed = encode_chunked(model.encoder, x, chunk_latents=chunk, norm="exact")
    assert streamed.shape == whole.shape
    assert rel_err(streamed, whole) < 1e-5


@pytest.mark.parametrize("latents,chunk", [(4, 1), (4, 2), (5, 3), (2, 1), (1, 1)])
def test_exact_streaming_decode_equals_one_pass(model, latents, chunk):
    z = torch.randn(1, 16, latents, 2, 3)
    whole = model.decode(z)
    streamed = model.decode(z, chunk_latents=chunk, norm="exact")
    assert streamed.shape == whole.shape == (1, 3, 1 + 4 * (latents - 1), 16, 24)
    assert rel_err(streamed, whole) < 1e-5


def test_exact_streaming_batch2_bf16(model):
    z = torch.randn(2, 16, 3, 2, 2)
    assert rel_err(model.decode(z, chunk_latents=1), model.decode(z)) < 1e-5
    m16 = random_model(seed=1, dtype=torch.bfloat16)
    z16 = z[:1, :, :2].to(torch.bfloat16)
    assert rel_err(m16.decode(z16, chunk_latents=1), m16.decode(z16)) < 3e-2


def test_approximate_streaming_is_bounded(model):
    """Per-chunk GroupNorm statistics change the output by a bounded amount; one chunk is exact."""
    x = torch.randn(1, 3, 13, 16, 16)
    z = torch.randn(1, 16, 4, 2, 2)
    enc_whole, dec_whole = model.encode(x).mean, model.decode(z)
    for chunk in (1, 2):
        assert 0 < rel_err(model.encode(x, chunk_latents=chunk, norm="chunk").mean, enc_whole) < 0.5
        assert 0 < rel_err(model.decode(z, chunk_latents=chunk, norm="chunk"), dec_whole) < 0.5
    assert rel_err(model.decode(z, chunk_latents=4, norm="chunk"), dec_whole) < 1e-6
    # Two passes: closer than per-chunk statistics, still not exact.
    two = rel_err(model.decode(z, chunk_latents=1, norm="two_pass"), dec_whole)
    assert 0 < two < rel_err(model.decode(z, chunk_latents=1, norm="chunk"), dec_whole)


def test_tiled_decode(model):
    z = torch.randn(1, 16, 2, 8, 12)
    whole = model.decode(z)
    # One tile covering everything is the one-pass result.
    assert rel_err(model.decode(z, tile=12), whole) < 1e-6
    tiled = model.decode(z, tile=4)
    assert tiled.shape == whole.shape and torch.isfinite(tiled).all()
    assert rel_err(tiled, whole) < 0.5
    # Tiles combine with streaming in time.
    z = z[:, :, :, :4, :6]
    both = model.decode(z, tile=4, chunk_latents=1, norm="exact")
    assert rel_err(both, model.decode(z, tile=4)) < 1e-5


def test_bad_arguments(model):
    z = torch.randn(1, 16, 2, 2, 2)
    with pytest.raises(ValueError, match="norm must be"):
        decode_chunked(model.decoder, z, 1, norm="fast")
    with pytest.raises(ValueError, match="chunk_latents must be >= 1"):
        encode_chunked(model.encoder, torch.randn(1, 3, 5, 16, 16), 0)
