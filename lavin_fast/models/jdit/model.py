"""LaVinDiT: the J-DiT of LaVin-DiT on lavin_fast's fused ops, padded (released) or packed input."""

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from lavin_fast.models.jdit.block import Block
from lavin_fast.models.jdit.layers import FinalLayer, TimestepEmbedder, patch_embedder
from lavin_fast.models.jdit.layout import JointLayout
from lavin_fast.models.jdit.patches import TOKEN_DIM, unpatchify


class LaVinDiT(nn.Module):
    """J-DiT (released 3.4B: hidden 2304, depth 22, 32 heads, kv_group 4 -> 8 KV heads, head_dim 72).

    Loads the released state_dict strictly. Calls:
      forward(x, t, cond): released padded layout, x (B, T_x, H, W, 64), cond (B, T_c, H, W, 64)
          patchified latents, t (B,) in [0, 1] -> velocity (B, 16, T_x, 2H, 2W);
      forward([x_i], t, [cond_i]): packed, samples of any (T_c, T_x, H, W), x_i (T_x, H, W, 64),
          cond_i (T_c, H, W, 64), t (S,) -> list of (16, T_x, 2H, 2W);
      forward_tokens(cond_tokens, x_tokens, t, layout): the packed core on flat tokens (N_c, 64),
          (N_x, 64) and a JointLayout -> (N_x, 64) (what the sampler calls every step).
    gradient_checkpointing=True recomputes each block in the backward (activation checkpointing).
    """

    def __init__(self, hidden_size=2304, depth=22, num_heads=32, kv_group=4, eps=1e-6,
                 gradient_checkpointing=False, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.hidden_size, self.depth, self.num_heads, self.kv_group = hidden_size, depth, num_heads, kv_group
        self.head_dim = hidden_size // num_heads
        self.gradient_checkpointing = gradient_checkpointing
        self.prompt_embed = nn.Parameter(torch.zeros(1, hidden_size, **kw))
        self.answer_embed = nn.Parameter(torch.zeros(1, hidden_size, **kw))
        self.cond_embedder = patch_embedder(hidden_size, **kw)
        self.x_embedder = patch_embedder(hidden_size, **kw)
        self.t_embedder = TimestepEmbedder(hidden_size, **kw)
        self.blocks = nn.ModuleList(Block(hidden_size, num_heads, kv_group, eps, **kw) for _ in range(depth))
        self.final_layer = FinalLayer(hidden_size, eps=eps, **kw)
        if device != torch.device("meta") and device != "meta":
            nn.init.normal_(self.prompt_embed, std=0.02)
            nn.init.normal_(self.answer_embed, std=0.02)

    def forward(self, x, t, cond):
        if isinstance(x, (list, tuple)):
            return self._forward_list(x, t, cond)
        if x.dim() != 5 or cond.dim() != 5 or x.shape[-1] != TOKEN_DIM or cond.shape[-1] != TOKEN_DIM:
            raise ValueError(f"LaVinDiT: x and cond must be (B, T, H, W, {TOKEN_DIM}) patchified latents, "
                             f"got x {tuple(x.shape)} and cond {tuple(cond.shape)}")
        b, t_c, h, w, _ = cond.shape
        if x.shape[0] != b or x.shape[2:4] != cond.shape[2:4]:
            raise ValueError(f"LaVinDiT: x {tuple(x.shape)} and cond {tuple(cond.shape)} must share "
                             f"B, H and W")
        t_x = x.shape[1]
        layout = JointLayout.build([(t_c, t_x, h, w)] * b, device=x.device)
        out = self.forward_tokens(cond.reshape(-1, TOKEN_DIM), x.reshape(-1, TOKEN_DIM),
                                  t.reshape(-1).expand(b), layout)
        return unpatchify(out.reshape(b, t_x, h, w, TOKEN_DIM))

    def _forward_list(self, xs, t, conds):
        if len(xs) != len(conds):
            raise ValueError(f"LaVinDiT: {len(xs)} targets but {len(conds)} conditions")
        shapes = [(c.shape[0], x.shape[0], x.shape[1], x.shape[2]) for x, c in zip(xs, conds)]
        layout = JointLayout.build(shapes, device=xs[0].device)
        t = torch.as_tensor(t, device=xs[0].device).reshape(-1).expand(len(xs))
        out = self.forward_tokens(torch.cat([c.reshape(-1, TOKEN_DIM) for c in conds]),
                                  torch.cat([x.reshape(-1, TOKEN_DIM) for x in xs]), t, layout)
        res, start = [], 0
        for t_c, t_x, h, w in shapes:
            n = t_x * h * w
            res.append(unpatchify(out[start:start + n].reshape(1, t_x, h, w, TOKEN_DIM))[0])
            start += n
        return res

    def conditioning(self, t):
        """Per-sample (t_cond, t_x), each (S, D)."""
        temb = self.t_embedder(t)
        return temb + self.prompt_embed, temb + self.answer_embed

    def forward_tokens(self, cond_tokens, x_tokens, t, layout):
        c = self.cond_embedder(cond_tokens)
        x = self.x_embedder(x_tokens)
        t_c, t_x = self.conditioning(t)
        for block in self.blocks:
            if self.gradient_checkpointing and torch.is_grad_enabled():
                c, x = checkpoint(block, c, x, t_c, t_x, layout, use_reentrant=False)
            else:
                c, x = block(c, x, t_c, t_x, layout)
        return self.final_layer(x, t_x, cu_seqlens=layout.cu_x)
