"""Joint (two-stream) attention of J-DiT with the released parameter names, on the fused ops."""

from torch import nn

from lavin_fast.attention import varlen_attention
from lavin_fast.linear import Linear
from lavin_fast.models.jdit.layout import JointLayout
from lavin_fast.norms import RMSNorm
from lavin_fast.rope import qk_norm_rope

STREAMS = ("cond", "x")


class Attention(nn.Module):
    """Per stream q = Linear(D -> H*d), k, v = Linear(D -> H_kv*d) (no biases), QK RMSNorm with a
    weight over the whole projected width, 3-D RoPE, then one bidirectional GQA attention over each
    sample's joint sequence [cond; x], split back, per-stream output projection.

    Keys: {cond,x}_{q,k,v,proj}.weight, {cond,x}_{qnorm,knorm}.weight.

    forward(cond, x, layout=None, grid=None) -> (out_cond, out_x):
      packed: cond (N_c, D), x (N_x, D) (all samples' tokens of each stream) and a JointLayout;
      padded: cond (B, T_c*H*W, D), x (B, T_x*H*W, D) and grid = (T_c, T_x, H, W).
    """

    def __init__(self, dim, num_heads, kv_group=4, eps=1e-6, device=None, dtype=None):
        super().__init__()
        if dim % num_heads or num_heads % kv_group:
            raise ValueError(f"Attention: need dim % num_heads == 0 and num_heads % kv_group == 0, got "
                             f"dim={dim}, num_heads={num_heads}, kv_group={kv_group}")
        self.dim, self.num_heads, self.kv_group, self.eps = dim, num_heads, kv_group, eps
        self.head_dim = dim // num_heads
        self.num_kv_heads = num_heads // kv_group
        kv_dim = self.num_kv_heads * self.head_dim
        kw = dict(device=device, dtype=dtype)
        for s in STREAMS:
            setattr(self, f"{s}_q", Linear(dim, dim, bias=False, **kw))
            setattr(self, f"{s}_k", Linear(dim, kv_dim, bias=False, **kw))
            setattr(self, f"{s}_v", Linear(dim, kv_dim, bias=False, **kw))
            setattr(self, f"{s}_qnorm", RMSNorm(dim, eps=eps, **kw))
            setattr(self, f"{s}_knorm", RMSNorm(kv_dim, eps=eps, **kw))
            setattr(self, f"{s}_proj", Linear(dim, dim, bias=False, **kw))

    def _qkv(self, s, h, positions):
        # LaVin-DiT's RoPE: the defaults (equal thirds, base 10000, rotate-half).
        q = qk_norm_rope(getattr(self, f"{s}_q")(h), getattr(self, f"{s}_qnorm").weight, positions,
                         self.num_heads, eps=self.eps)
        k = qk_norm_rope(getattr(self, f"{s}_k")(h), getattr(self, f"{s}_knorm").weight, positions,
                         self.num_kv_heads, eps=self.eps)
        v = getattr(self, f"{s}_v")(h).unflatten(-1, (self.num_kv_heads, self.head_dim))
        return q, k, v

    def forward(self, cond, x, layout=None, grid=None):
        if cond.dim() == 3:
            return padded_call(self, cond, x, grid)
        qc, kc, vc = self._qkv("cond", cond, layout.pos_cond)
        qx, kx, vx = self._qkv("x", x, layout.pos_x)
        q, k, v = layout.to_joint(qc, qx), layout.to_joint(kc, kx), layout.to_joint(vc, vx)
        o, _lse = varlen_attention(q, k, v, layout.cu_joint, layout.cu_joint, layout.max_joint,
                                   layout.max_joint, softmax_scale=self.head_dim ** -0.5)
        o_c, o_x = layout.from_joint(o.flatten(1))
        return self.cond_proj(o_c), self.x_proj(o_x)


def padded_call(module, cond, x, grid, *args):
    """Runs module's packed forward on a padded batch of B equal samples: (B, L, D) <-> (B*L, D).
    Per-sample tensors in args ((B, D)) pass through unchanged."""
    if grid is None:
        raise ValueError(f"{type(module).__name__}: padded input (B, L, D) needs grid=(T_c, T_x, H, W)")
    b = cond.shape[0]
    layout = JointLayout.build([grid] * b, device=cond.device)
    if cond.shape[1] != layout.n_cond // b or x.shape[1] != layout.n_x // b:
        raise ValueError(f"{type(module).__name__}: grid {tuple(grid)} gives {layout.n_cond // b} "
                         f"condition and {layout.n_x // b} target tokens per sample, got cond "
                         f"{tuple(cond.shape)} and x {tuple(x.shape)}")
    c, xs = module(cond.flatten(0, 1), x.flatten(0, 1), *args, layout=layout)
    return c.unflatten(0, (b, -1)), xs.unflatten(0, (b, -1))
