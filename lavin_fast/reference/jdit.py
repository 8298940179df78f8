"""Reference J-DiT: the released LaVin-DiT architecture in plain PyTorch (the project's LaVin-DiT spec).

Written from the specification (the released source is not available here) and checked against the
golden output the released code produced (tests/test_jdit_reference.py). Same parameter names as the
release, so a released state_dict loads strictly. Float64-capable; it is the spec the fused model
(lavin_fast.models.jdit) is tested against, and the "reference eager" baseline of `lavin-fast bench`.

Shapes: cond (B, T_c, H, W, 64) and x (B, T_x, H, W, 64) are patchified latents (2x2 patches of 16
channels, channel fastest); t (B,) in [0, 1]; the output is the velocity (B, 16, T_x, 2H, 2W).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

# The token format (pure reshapes) and the released sizes are the product's: shared, not restated.
from lavin_fast.models.jdit.layers import FREQ_DIM, mlp_hidden
from lavin_fast.models.jdit.patches import TOKEN_DIM, unpatchify

EPS = 1e-6


# ---- timestep embedding ----

# The spec's own formula; lavin_fast.models.jdit.layers states it again (tests/test_jdit_model.py).
def timestep_embedding(t, dim=FREQ_DIM, max_period=10000.0):
    """Sinusoid of continuous t: [cos(t * f_i), sin(t * f_i)], f_i = max_period^(-i / (dim/2))."""
    half = dim // 2
    c = torch.promote_types(t.dtype, torch.float32)  # fp32 as released; fp64 for fp64 t
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=c, device=t.device) / half)
    args = t[:, None].to(c) * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden_size, frequency_embedding_size=FREQ_DIM):
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(nn.Linear(frequency_embedding_size, hidden_size), nn.SiLU(),
                                 nn.Linear(hidden_size, hidden_size))

    def forward(self, t):
        emb = timestep_embedding(t, self.frequency_embedding_size)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


# ---- 3-D RoPE ----

def rope_sections(head_dim):
    """Equal thirds of the head dimension for (t, h, w), each even (24/24/24 at head_dim 72)."""
    part = head_dim // 3
    part -= part % 2
    return (head_dim - 2 * part, part, part)


def rope_cos_sin(positions, head_dim, base=10000.0, sections=None, dtype=torch.float32):
    """cos, sin (N, head_dim) for integer positions (N, 3) = (t, h, w), rotate-half per part. Computed
    in fp32 as released (fp64 when asked, for the float64 reference)."""
    sections = sections or rope_sections(head_dim)
    cos, sin = [], []
    for axis, d in enumerate(sections):
        inv_freq = base ** (-torch.arange(0, d, 2, dtype=dtype, device=positions.device) / d)
        ang = positions[:, axis].to(dtype)[:, None] * inv_freq[None]
        ang = torch.cat([ang, ang], dim=-1)
        cos.append(ang.cos())
        sin.append(ang.sin())
    return torch.cat(cos, -1), torch.cat(sin, -1)


def apply_rope(x, cos, sin, sections):
    """x (..., N, heads, head_dim); cos/sin (N, head_dim). Rotate-half inside each part."""
    out, start = [], 0
    for d in sections:
        part = x[..., start:start + d]
        c, s = cos[:, None, start:start + d], sin[:, None, start:start + d]
        x1, x2 = part[..., : d // 2], part[..., d // 2:]
        out.append(part * c + torch.cat([-x2, x1], dim=-1) * s)
        start += d
    return torch.cat(out, dim=-1)


def joint_positions(t_frames, h, w, device=None):
    """LaVin-DiT's grid: t = frame index over the joint sequence, (h, w) restart every frame. (N, 3)."""
    tt, hh, ww = torch.meshgrid(torch.arange(t_frames, device=device), torch.arange(h, device=device),
                                torch.arange(w, device=device), indexing="ij")
    return torch.stack([tt, hh, ww], -1).reshape(-1, 3)


class RotaryEmbedding3D(nn.Module):
    """cos/sin tables for the joint (t, h, w) grid (no parameters)."""

    def __init__(self, head_dim, base=10000.0, sections=None):
        super().__init__()
        self.head_dim, self.base = head_dim, base
        self.sections = tuple(sections or rope_sections(head_dim))

    def forward(self, t_frames, h, w, device=None, dtype=torch.float32):
        cos, sin = rope_cos_sin(joint_positions(t_frames, h, w, device), self.head_dim, self.base,
                                self.sections, torch.promote_types(dtype, torch.float32))
        return cos.to(dtype), sin.to(dtype)


# ---- norms and blocks ----

def rms(x, eps=EPS):
    c = torch.promote_types(x.dtype, torch.float32)
    y = x.to(c)
    return (y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=EPS):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return rms(x, self.eps) * self.weight.to(x.dtype)


class SwiGLU(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class JointAttention(nn.Module):
    def __init__(self, dim, num_heads, kv_group):
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.num_kv_heads = num_heads // kv_group
        kv_dim = self.num_kv_heads * self.head_dim
        for s in ("cond", "x"):
            setattr(self, f"{s}_q", nn.Linear(dim, dim, bias=False))
            setattr(self, f"{s}_k", nn.Linear(dim, kv_dim, bias=False))
            setattr(self, f"{s}_v", nn.Linear(dim, kv_dim, bias=False))
            setattr(self, f"{s}_qnorm", RMSNorm(dim))
            setattr(self, f"{s}_knorm", RMSNorm(kv_dim))
            setattr(self, f"{s}_proj", nn.Linear(dim, dim, bias=False))

    def _qkv(self, s, h):
        b, n, _ = h.shape
        q = getattr(self, f"{s}_qnorm")(getattr(self, f"{s}_q")(h)).view(b, n, self.num_heads, -1)
        k = getattr(self, f"{s}_knorm")(getattr(self, f"{s}_k")(h)).view(b, n, self.num_kv_heads, -1)
        v = getattr(self, f"{s}_v")(h).view(b, n, self.num_kv_heads, -1)
        return q, k, v

    def forward(self, h_cond, h_x, cos, sin, sections):
        n_c = h_cond.shape[1]
        qc, kc, vc = self._qkv("cond", h_cond)
        qx, kx, vx = self._qkv("x", h_x)
        q = apply_rope(torch.cat([qc, qx], 1), cos, sin, sections)
        k = apply_rope(torch.cat([kc, kx], 1), cos, sin, sections)
        v = torch.cat([vc, vx], 1)
        rep = self.num_heads // self.num_kv_heads
        k, v = k.repeat_interleave(rep, dim=2), v.repeat_interleave(rep, dim=2)
        o = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                           scale=self.head_dim ** -0.5)
        o = o.transpose(1, 2).flatten(2)
        return self.cond_proj(o[:, :n_c]), self.x_proj(o[:, n_c:])


class Modulation(nn.Sequential):
    def __init__(self, dim):
        super().__init__(nn.SiLU(), nn.Linear(dim, 4 * dim))


class Block(nn.Module):
    def __init__(self, dim, num_heads, kv_group):
        super().__init__()
        self.joint_attn = JointAttention(dim, num_heads, kv_group)
        for s in ("cond", "x"):
            setattr(self, f"{s}_mlp", SwiGLU(dim, mlp_hidden(dim)))
            setattr(self, f"{s}_modulation", Modulation(dim))

    def forward(self, c, x, t_c, t_x, cos, sin, sections):
        mods = {s: getattr(self, f"{s}_modulation")(tt).unsqueeze(1).chunk(4, -1)
                for s, tt in (("cond", t_c), ("x", t_x))}
        h_c = rms(c) * (1 + mods["cond"][0])
        h_x = rms(x) * (1 + mods["x"][0])
        a_c, a_x = self.joint_attn(h_c, h_x, cos, sin, sections)
        c = c + torch.tanh(mods["cond"][1]) * rms(a_c)
        x = x + torch.tanh(mods["x"][1]) * rms(a_x)
        out = []
        for s, v in (("cond", c), ("x", x)):
            scale, gate = mods[s][2], mods[s][3]
            m = getattr(self, f"{s}_mlp")(rms(v) * (1 + scale))
            out.append(v + torch.tanh(gate) * rms(m))
        return out


class FinalLayer(nn.Module):
    def __init__(self, dim, out_dim=TOKEN_DIM):
        super().__init__()
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, dim))
        self.linear = nn.Linear(dim, out_dim)

    def forward(self, x, t_x):
        return self.linear(rms(x) * (1 + self.adaLN_modulation(t_x).unsqueeze(1)))


class LaVinDiT(nn.Module):
    """Reference J-DiT. `forward(x, t, cond)` as the release (see module docstring)."""

    def __init__(self, hidden_size=2304, depth=22, num_heads=32, kv_group=4, rope_base=10000.0):
        super().__init__()
        self.hidden_size, self.num_heads = hidden_size, num_heads
        self.head_dim = hidden_size // num_heads
        self.prompt_embed = nn.Parameter(torch.zeros(1, hidden_size))
        self.answer_embed = nn.Parameter(torch.zeros(1, hidden_size))
        self.cond_embedder = nn.Sequential(nn.Linear(TOKEN_DIM, hidden_size), nn.LayerNorm(hidden_size))
        self.x_embedder = nn.Sequential(nn.Linear(TOKEN_DIM, hidden_size), nn.LayerNorm(hidden_size))
        self.t_embedder = TimestepEmbedder(hidden_size)
        self.blocks = nn.ModuleList(Block(hidden_size, num_heads, kv_group) for _ in range(depth))
        self.final_layer = FinalLayer(hidden_size)
        self.rope = RotaryEmbedding3D(self.head_dim, rope_base)

    def forward(self, x, t, cond):
        b, t_c, h, w, _ = cond.shape
        t_x = x.shape[1]
        c = self.cond_embedder(cond.reshape(b, -1, TOKEN_DIM))
        xs = self.x_embedder(x.reshape(b, -1, TOKEN_DIM))
        temb = self.t_embedder(t).to(c.dtype)
        tc, tx = temb + self.prompt_embed, temb + self.answer_embed
        cos, sin = self.rope(t_c + t_x, h, w, device=x.device, dtype=c.dtype)
        for block in self.blocks:
            c, xs = block(c, xs, tc, tx, cos, sin, self.rope.sections)
        out = self.final_layer(xs, tx)
        return unpatchify(out.reshape(b, t_x, h, w, TOKEN_DIM))
