"""ST-VAE: the golden outputs of the released code, the released key layout, and the reference."""

import json

import pytest
import torch

from lavin_fast.models.stvae import (
    AutoencoderKLSTVAE,
    DiagonalGaussianDistribution,
    denormalize_latent,
    normalize_latent,
)
from lavin_fast.reference import stvae as ref
from tests.stvae_helpers import RELEASED_KEYS, TINY, golden, one_thread, random_model, rel_err  # noqa: F401


def test_golden_matches_released_code():
    cfg, params, data = golden()
    model = AutoencoderKLSTVAE(**cfg)
    model.load_state_dict(params, strict=True)
    post = model.encode(data["input.clip"])
    assert rel_err(post.mean, data["posterior.mean"]) < 1e-5
    assert rel_err(post.logvar, data["posterior.logvar"]) < 1e-5
    assert rel_err(model.decode(data["posterior.mean"]), data["decoded"]) < 1e-5


def test_reference_matches_golden():
    cfg, params, data = golden()
    mean, logvar = ref.stvae_encode(params, data["input.clip"], **cfg)
    assert rel_err(mean, data["posterior.mean"]) < 1e-5
    assert rel_err(logvar, data["posterior.logvar"]) < 1e-5
    assert rel_err(ref.stvae_decode(params, data["posterior.mean"], **cfg), data["decoded"]) < 1e-5


def test_released_layout_exactly():
    with torch.device("meta"):
        model = AutoencoderKLSTVAE()
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    released = json.load(open(RELEASED_KEYS))
    assert list(got) == list(released) or set(got) == set(released)
    assert got == released
    assert sum(v.numel() for v in model.state_dict().values()) == 215_583_907


def test_strict_loading_rejects_other_layouts():
    cfg, params, _ = golden()
    model = AutoencoderKLSTVAE(**cfg)
    model.load_state_dict(params, strict=True)
    extra = dict(params, **{"decoder.up_blocks.0.resnets.0.temb_proj.weight": torch.zeros(1)})
    with pytest.raises(RuntimeError, match="Unexpected key"):
        model.load_state_dict(extra, strict=True)
    missing = {k: v for k, v in params.items() if "norm_out" not in k}
    with pytest.raises(RuntimeError, match="Missing key"):
        model.load_state_dict(missing, strict=True)


@pytest.mark.parametrize("frames,size", [(1, (16, 24)), (5, (16, 16)), (6, (24, 16)), (7, (16, 24)),
                                         (9, (20, 12))])
def test_matches_reference_fp32(frames, size):
    model = random_model()
    params = {k: v.double() for k, v in model.state_dict().items()}
    x = torch.randn(2, 3, frames, *size)
    post = model.encode(x)
    mean, logvar = ref.stvae_encode(params, x.double(), **TINY)
    assert post.mean.shape == mean.shape
    assert rel_err(post.mean, mean) < 1e-5 and rel_err(post.logvar, logvar) < 1e-5
    z = torch.randn_like(post.mean)
    out = model.decode(z)
    want = ref.stvae_decode(params, z.double(), **TINY)
    assert out.shape == want.shape == (2, 3, 1 + 4 * (z.shape[2] - 1), 8 * z.shape[3], 8 * z.shape[4])
    assert rel_err(out, want) < 1e-5


def test_matches_reference_bf16():
    model = random_model()
    params = {k: v.double() for k, v in model.state_dict().items()}
    model = model.to(torch.bfloat16)
    x = torch.randn(1, 3, 5, 16, 16)
    post = model.encode(x.to(torch.bfloat16))
    mean, _ = ref.stvae_encode(params, x.to(torch.bfloat16).double(), **TINY)
    assert post.mean.dtype == torch.bfloat16
    assert rel_err(post.mean, mean) < 3e-2
    z = torch.randn(1, 16, 2, 2, 2).to(torch.bfloat16)
    out = model.decode(z)
    assert out.dtype == torch.bfloat16
    assert rel_err(out, ref.stvae_decode(params, z.double(), **TINY)) < 3e-2


def test_image_path_t1():
    """A single image is a 1-frame clip: 1 latent frame, decoded back to 1 frame."""
    model = random_model()
    params = {k: v.double() for k, v in model.state_dict().items()}
    x = torch.randn(1, 3, 1, 16, 16)
    post = model.encode(x)
    assert post.mean.shape == (1, 16, 1, 2, 2)
    out = model.decode(post.mean)
    assert out.shape == (1, 3, 1, 16, 16)
    assert rel_err(out, ref.stvae_decode(params, post.mean.double(), **TINY)) < 1e-5


def test_posterior_and_latent_normalisation():
    h = torch.randn(2, 32, 3, 4, 4) * 30
    post = DiagonalGaussianDistribution(h)
    assert post.logvar.min() >= -30 and post.logvar.max() <= 20
    assert torch.equal(post.mode(), h[:, :16])
    z = torch.randn(2, 16, 3, 4, 4)
    assert torch.allclose(normalize_latent(z), (z - 0.032470703125) * 1.08936170213)
    assert torch.allclose(denormalize_latent(normalize_latent(z)), z, atol=1e-6)
    assert torch.allclose(ref.normalize_latent(z), normalize_latent(z))


# Attributes the released constructors set (lib/model/vae3d.py): our forwards use only these, so an
# instance built by the released code keeps working after `module.__class__ = OurClass`.
RELEASED_ATTRS = {
    "STVAECausalConv3d": ["conv", "pad_mode", "height_pad", "width_pad", "time_pad", "time_causal_padding",
                          "temporal_dim", "time_kernel_size", "conv_cache"],
    "STVAESpatialNorm3D": ["norm_layer", "conv_y", "conv_b"],
    "STVAEResnetBlock3D": ["in_channels", "out_channels", "nonlinearity", "use_conv_shortcut", "norm1",
                           "norm2", "conv1", "dropout", "conv2"],
    "STVAEDownsample3D": ["conv", "compress_time"],
    "STVAEUpsample3D": ["conv", "compress_time"],
    "STVAEDownBlock3D": ["resnets", "downsamplers", "gradient_checkpointing"],
    "STVAEMidBlock3D": ["resnets", "gradient_checkpointing"],
    "STVAEUpBlock3D": ["resnets", "upsamplers", "gradient_checkpointing"],
    "STVAEEncoder3D": ["conv_in", "down_blocks", "mid_block", "norm_out", "conv_act", "conv_out",
                       "gradient_checkpointing"],
    "STVAEDecoder3D": ["conv_in", "mid_block", "up_blocks", "norm_out", "conv_act", "conv_out",
                       "gradient_checkpointing"],
    "AutoencoderKLSTVAE": ["latent_channels", "encoder", "decoder", "quant_conv", "post_quant_conv",
                           "use_slicing", "use_tiling", "tile_sample_min_size", "tile_latent_min_size",
                           "tile_overlap_factor", "tile_sample_min_size_t", "tile_latent_min_size_t"],
}


def test_released_attributes():
    model = random_model()
    seen = set()
    for m in model.modules():
        name = type(m).__name__
        if name in RELEASED_ATTRS:
            seen.add(name)
            missing = [a for a in RELEASED_ATTRS[name] if not hasattr(m, a)]
            assert not missing, f"{name} lacks released attributes {missing}"
    assert seen == set(RELEASED_ATTRS)


def test_resnet_block_standalone():
    """A block built on its own with the released constructor arguments computes the reference."""
    from lavin_fast.models.stvae import STVAEResnetBlock3D

    block = STVAEResnetBlock3D(32, 64, temb_channels=0, groups=8)
    x = torch.randn(1, 32, 3, 8, 8)
    with torch.no_grad():
        y = block(x)
    p = {f"b.{k}": v.double() for k, v in block.state_dict().items()}
    assert rel_err(y, ref.resnet(p, "b", x.double(), 8)) < 1e-5
