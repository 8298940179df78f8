"""Small ST-VAE models with random weights for the ST-VAE tests."""

import json
from pathlib import Path

import pytest

import safetensors
import safetensors.torch
import torch

from lavin_fast.models.stvae import AutoencoderKLSTVAE

# Golden files of the released architecture (copied from the project's shared data; README there).
DATA = Path(__file__).parent / "data"
GOLDEN = str(DATA / "golden_stvae_small.safetensors")
RELEASED_KEYS = str(DATA / "released_stvae_keys.json")
# Decoder spatial norms have 32 groups (hard-coded in the release): 32 channels is the minimum width.
TINY = dict(block_out_channels=(32, 32, 32, 32), norm_num_groups=8, layers_per_block=1)


def golden():
    cfg = json.loads(safetensors.safe_open(GOLDEN, "pt").metadata()["config"])
    data = safetensors.torch.load_file(GOLDEN)
    params = {k[len("model."):]: v for k, v in data.items() if k.startswith("model.")}
    return cfg, params, data


def random_model(config=TINY, seed=0, dtype=torch.float32):
    """A model whose every parameter (norm affines too) is random, so no layer is an identity."""
    gen = torch.Generator().manual_seed(seed)
    model = AutoencoderKLSTVAE(**config)
    with torch.no_grad():
        for m in model.modules():
            for name, p in m.named_parameters(recurse=False):
                if isinstance(m, torch.nn.GroupNorm):
                    p.copy_((1.0 if name == "weight" else 0.0) + 0.2 * torch.randn(p.shape, generator=gen))
                elif name == "bias":
                    p.copy_(0.1 * torch.randn(p.shape, generator=gen))
                else:
                    p.copy_(torch.randn(p.shape, generator=gen) / p[0].numel() ** 0.5)
    return model.to(dtype)


def rel_err(a, b):
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm()).item()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The tiny test models gain nothing from threads; on a busy 2-core machine OpenMP spin-waits
    make them 100x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
