"""Load the released models from safetensors files: strips wrapper prefixes and non-model tensors,
takes the configuration from the shapes (J-DiT: head_dim 72 as released unless told otherwise) or the
file's `config` metadata (ST-VAE), and loads strictly."""

import inspect
import json
import re

import torch

PREFIXES = ("model.", "module.", "_orig_mod.")


def strip_prefix(sd):
    for p in PREFIXES:
        if sd and all(k.startswith(p) for k in sd):
            return strip_prefix({k[len(p):]: v for k, v in sd.items()})
    return sd


def jdit_config(sd, head_dim=72):
    hidden = sd["prompt_embed"].shape[1]
    depth = 1 + max(int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k)))
    heads = hidden // head_dim
    kv_heads = sd["blocks.0.joint_attn.x_k.weight"].shape[0] // head_dim
    return dict(hidden_size=hidden, depth=depth, num_heads=heads, kv_group=heads // kv_heads)


def load_jdit(path, head_dim=72, dtype=None, device=None):
    from safetensors.torch import load_file

    from lavin_fast.models.jdit import LaVinDiT
    sd = strip_prefix({k: v for k, v in load_file(path).items()
                       if not k.startswith(("input.", "output"))})
    cfg = jdit_config(sd, head_dim)
    with torch.device("meta"):
        model = LaVinDiT(**cfg)
    model.load_state_dict(sd, strict=True, assign=True)
    return model.to(device=device, dtype=dtype), cfg


def load_stvae(path, dtype=None, device=None):
    """The ST-VAE; released configuration unless the file's metadata holds a `config` JSON."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    from lavin_fast.models.stvae import AutoencoderKLSTVAE
    meta = safe_open(path, "pt").metadata() or {}
    cfg = json.loads(meta["config"]) if "config" in meta else {}
    unknown = sorted(set(cfg) - set(inspect.signature(AutoencoderKLSTVAE).parameters))
    if unknown:  # another model's file (a J-DiT's config names hidden_size, depth, ...)
        raise ValueError(f"{path}: its config metadata names {unknown}, which the ST-VAE does not take "
                         f"(is it an ST-VAE file?)")
    sd = strip_prefix({k: v for k, v in load_file(path).items()
                       if not k.startswith(("input.", "posterior.", "decoded"))})
    model = AutoencoderKLSTVAE(**cfg)
    model.load_state_dict(sd, strict=True)
    return model.to(device=device, dtype=dtype)
