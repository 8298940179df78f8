"""Shared J-DiT test fixtures: the golden file, small configurations, random released-layout weights."""

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file

# Golden files of the released architecture (copied from the project's shared data; README there).
DATA = Path(__file__).parent / "data"
GOLDEN = str(DATA / "golden_jdit_small.safetensors")
RELEASED_KEYS = str(DATA / "released_jdit_3b_keys.json")
RELEASED = dict(hidden_size=2304, depth=22, num_heads=32, kv_group=4)
# The released head layout (head_dim 72, 4:1 GQA) at a small width.
SMALL = dict(hidden_size=288, depth=2, num_heads=4, kv_group=4)


def golden():
    """(config, state_dict, inputs (x, t, cond), output)."""
    cfg = json.loads(safe_open(GOLDEN, "pt").metadata()["config"])
    d = load_file(GOLDEN)
    sd = {k.removeprefix("model."): v for k, v in d.items() if k.startswith("model.")}
    return cfg, sd, (d["input.x"], d["input.t"], d["input.cond"]), d["output"]


def randomize(model, seed=0):
    """Every parameter random, as in the golden file (std 0.05; norm weights 1 + 0.05 randn), so no block
    is the identity (the released init zeroes the modulation)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g, dtype=torch.float64) * 0.05
            if "norm" in name or name.endswith("embedder.1.weight"):
                r += 1
            p.copy_(r.to(p.dtype))
    return model


def pair(cfg, seed=0, dtype=torch.float32):
    """(reference, lavin_fast) models with the same random weights."""
    from lavin_fast.models.jdit import LaVinDiT
    from lavin_fast.reference.jdit import LaVinDiT as RefDiT
    ref = randomize(RefDiT(**cfg), seed).to(dtype)
    fast = LaVinDiT(**cfg).to(dtype)
    fast.load_state_dict(ref.state_dict(), strict=True)
    return ref, fast


def latents(b, t, h, w, dtype=torch.float32):
    return torch.randn(b, t, h, w, 64, dtype=torch.float64).to(dtype)
