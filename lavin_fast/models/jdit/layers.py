"""J-DiT pieces with the released names: TimestepEmbedder, SwiGLU MLP, FinalLayer, and the patch
embedders (Linear 64 -> D, LayerNorm)."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from lavin_fast.linear import Linear
from lavin_fast.models.jdit.patches import TOKEN_DIM
from lavin_fast.norms import rms_norm_modulate

EPS = 1e-6
FREQ_DIM = 256  # width of the timestep sinusoid


def mlp_hidden(hidden_size):
    """SwiGLU width: int(8D/3 / 64) * 64 (6144 at D = 2304)."""
    return int(8 * hidden_size / 3 / 64) * 64


def timestep_embedding(t, dim=FREQ_DIM, max_period=10000.0):
    """Sinusoid of continuous t (B,) -> (B, dim): [cos(t * f_i), sin(t * f_i)],
    f_i = max_period^(-i / (dim/2)). The reference J-DiT states the same formula as its own (it is the
    spec); tests/test_jdit_model.py checks the two agree bit for bit."""
    half = dim // 2
    c = torch.promote_types(t.dtype, torch.float32)  # fp32 as released; fp64 for fp64 t
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=c, device=t.device) / half)
    args = t[:, None].to(c) * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class TimestepEmbedder(nn.Module):
    """t in [0, 1] (B,) -> (B, D): 256-dim sinusoid (cos half first, max_period 1e4), Linear, SiLU,
    Linear. Keys mlp.0.*, mlp.2.* as released."""

    def __init__(self, hidden_size, frequency_embedding_size=FREQ_DIM, device=None, dtype=None):
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        kw = dict(device=device, dtype=dtype)
        self.mlp = nn.Sequential(Linear(frequency_embedding_size, hidden_size, **kw), nn.SiLU(),
                                 Linear(hidden_size, hidden_size, **kw))

    timestep_embedding = staticmethod(timestep_embedding)

    def forward(self, t):
        emb = timestep_embedding(t.reshape(-1), self.frequency_embedding_size)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


def patch_embedder(hidden_size, in_dim=TOKEN_DIM, device=None, dtype=None):
    """Linear(64 -> D) with bias, then LayerNorm with affine (keys 0.*, 1.*)."""
    return nn.Sequential(Linear(in_dim, hidden_size, device=device, dtype=dtype),
                         nn.LayerNorm(hidden_size, device=device, dtype=dtype))


class SwiGLU(nn.Module):
    """down(silu(gate(h)) * up(h)), no biases, intermediate int(8D/3 / 64) * 64."""

    def __init__(self, dim, hidden_dim=None, device=None, dtype=None):
        super().__init__()
        hidden_dim = hidden_dim or mlp_hidden(dim)
        kw = dict(bias=False, device=device, dtype=dtype)
        self.gate_proj = Linear(dim, hidden_dim, **kw)
        self.up_proj = Linear(dim, hidden_dim, **kw)
        self.down_proj = Linear(hidden_dim, dim, **kw)

    def forward(self, x):
        g, u = self.gate_proj(x), self.up_proj(x)
        if not torch.is_grad_enabled():  # inference: no autograd graph to keep, reuse g's memory
            return self.down_proj(F.silu(g, inplace=True).mul_(u))
        return self.down_proj(F.silu(g) * u)


class FinalLayer(nn.Module):
    """Target stream only: rms(x) * (1 + Linear(SiLU(t_x))), then Linear(D -> 64). Zero-initialised.

    forward(x, c, cu_seqlens=None): padded x (B, L, D), c (B, D); packed x (N, D) with cu_seqlens
    (S + 1,) int32 and c (S, D)."""

    def __init__(self, hidden_size, out_dim=TOKEN_DIM, eps=EPS, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.eps = eps
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), Linear(hidden_size, hidden_size, **kw))
        self.linear = Linear(hidden_size, out_dim, **kw)
        for p in (*self.adaLN_modulation[1].parameters(), *self.linear.parameters()):
            nn.init.zeros_(p)

    def forward(self, x, c, cu_seqlens=None):
        scale = self.adaLN_modulation(c)
        if scale.dtype != x.dtype:
            scale = scale.to(x.dtype)
        return self.linear(rms_norm_modulate(x, scale, None, self.eps, cu_seqlens=cu_seqlens))
