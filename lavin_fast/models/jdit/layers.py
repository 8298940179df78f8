"""J-DiT pieces with the released names: TimestepEmbedder, SwiGLU MLP, FinalLayer, RotaryEmbedding3D,
and the patch embedders (Linear 64 -> D, LayerNorm)."""

import torch
import torch.nn.functional as F
from torch import nn

from lavin_fast.norms import rms_norm_modulate
from lavin_fast.packing.positions import joint_positions
from lavin_fast.reference.jdit import (FREQ_DIM, TOKEN_DIM, mlp_hidden, rope_cos_sin, rope_sections,
                                       timestep_embedding)

EPS = 1e-6


class TimestepEmbedder(nn.Module):
    """t in [0, 1] (B,) -> (B, D): 256-dim sinusoid (cos half first, max_period 1e4), Linear, SiLU,
    Linear. Keys mlp.0.*, mlp.2.* as released."""

    def __init__(self, hidden_size, frequency_embedding_size=FREQ_DIM, device=None, dtype=None):
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        kw = dict(device=device, dtype=dtype)
        self.mlp = nn.Sequential(nn.Linear(frequency_embedding_size, hidden_size, **kw), nn.SiLU(),
                                 nn.Linear(hidden_size, hidden_size, **kw))

    timestep_embedding = staticmethod(timestep_embedding)

    def forward(self, t):
        emb = timestep_embedding(t.reshape(-1), self.frequency_embedding_size)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


def patch_embedder(hidden_size, in_dim=TOKEN_DIM, device=None, dtype=None):
    """Linear(64 -> D) with bias, then LayerNorm with affine (keys 0.*, 1.*)."""
    return nn.Sequential(nn.Linear(in_dim, hidden_size, device=device, dtype=dtype),
                         nn.LayerNorm(hidden_size, device=device, dtype=dtype))


class SwiGLU(nn.Module):
    """down(silu(gate(h)) * up(h)), no biases, intermediate int(8D/3 / 64) * 64."""

    def __init__(self, dim, hidden_dim=None, device=None, dtype=None):
        super().__init__()
        hidden_dim = hidden_dim or mlp_hidden(dim)
        kw = dict(bias=False, device=device, dtype=dtype)
        self.gate_proj = nn.Linear(dim, hidden_dim, **kw)
        self.up_proj = nn.Linear(dim, hidden_dim, **kw)
        self.down_proj = nn.Linear(hidden_dim, dim, **kw)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class FinalLayer(nn.Module):
    """Target stream only: rms(x) * (1 + Linear(SiLU(t_x))), then Linear(D -> 64). Zero-initialised.

    forward(x, c, cu_seqlens=None): padded x (B, L, D), c (B, D); packed x (N, D) with cu_seqlens
    (S + 1,) int32 and c (S, D)."""

    def __init__(self, hidden_size, out_dim=TOKEN_DIM, eps=EPS, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.eps = eps
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, hidden_size, **kw))
        self.linear = nn.Linear(hidden_size, out_dim, **kw)
        for p in (*self.adaLN_modulation[1].parameters(), *self.linear.parameters()):
            nn.init.zeros_(p)

    def forward(self, x, c, cu_seqlens=None):
        scale = self.adaLN_modulation(c)
        if scale.dtype != x.dtype:
            scale = scale.to(x.dtype)
        return self.linear(rms_norm_modulate(x, scale, None, self.eps, cu_seqlens=cu_seqlens))


class RotaryEmbedding3D(nn.Module):
    """3-D RoPE tables for LaVin-DiT's joint grid: head_dim split in thirds for (t, h, w), base 10000,
    rotate-half inside each third. No parameters.

    forward(T, H, W) -> (cos, sin), each (T*H*W, head_dim) fp32, for the joint sequence of T frames
    (condition frames first); forward(positions=...) for arbitrary (N, 3) integer positions (packed
    samples). The fused model does not need the tables (qk_norm_rope computes them in-register);
    they serve code that applies RoPE itself."""

    def __init__(self, head_dim, base=10000.0, sections=None):
        super().__init__()
        self.head_dim, self.base = head_dim, base
        self.sections = tuple(sections or rope_sections(head_dim))

    def forward(self, T=None, H=None, W=None, positions=None, device=None, dtype=torch.float32):
        if positions is None:
            positions = joint_positions(T, 0, H, W)
        cos, sin = rope_cos_sin(positions.to(device), self.head_dim, self.base, self.sections)
        return cos.to(dtype), sin.to(dtype)
