"""J-DiT block with the released parameter names, on the fused norm ops."""

from torch import nn

from lavin_fast.models.jdit.attention import STREAMS, Attention, padded_call
from lavin_fast.models.jdit.layers import SwiGLU
from lavin_fast.norms import JDiTModulation, gated_rms_residual, rms_norm_modulate


class Block(nn.Module):
    """Per stream s (sandwich norms, RMSNorm without weight, no shift, tanh gates):
    h = rms(s)(1 + scale_attn); a = Attention(h_cond, h_x); s += tanh(gate_attn) rms(a);
    h = rms(s)(1 + scale_mlp); s += tanh(gate_mlp) rms(SwiGLU(h)).

    Keys: joint_attn.*, {cond,x}_mlp.{gate,up,down}_proj.weight, {cond,x}_modulation.1.{weight,bias}.

    forward(cond, x, t_cond, t_x, layout=None, grid=None) -> (cond, x): packed (N, D) tokens with
    t_cond/t_x (S, D) and a JointLayout, or padded (B, L, D) with (B, D) and grid (T_c, T_x, H, W).
    """

    def __init__(self, hidden_size, num_heads, kv_group=4, eps=1e-6, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.eps = eps
        self.joint_attn = Attention(hidden_size, num_heads, kv_group, eps, **kw)
        for s in STREAMS:
            setattr(self, f"{s}_mlp", SwiGLU(hidden_size, **kw))
            setattr(self, f"{s}_modulation", JDiTModulation(hidden_size, **kw))

    def forward(self, cond, x, t_cond, t_x, layout=None, grid=None):
        if cond.dim() == 3:
            return padded_call(self, cond, x, grid, t_cond, t_x)
        cu = {"cond": layout.cu_cond, "x": layout.cu_x}
        streams = {"cond": cond, "x": x}
        mods = {}
        for s, c in (("cond", t_cond), ("x", t_x)):
            dt = streams[s].dtype
            mods[s] = [m.to(dt).contiguous() for m in getattr(self, f"{s}_modulation")(c)]
        h = {s: rms_norm_modulate(streams[s], mods[s][0], None, self.eps, cu_seqlens=cu[s]) for s in STREAMS}
        a = dict(zip(STREAMS, self.joint_attn(h["cond"], h["x"], layout)))
        for s in STREAMS:
            r = gated_rms_residual(streams[s], a[s], mods[s][1], self.eps, cu_seqlens=cu[s])
            m = getattr(self, f"{s}_mlp")(rms_norm_modulate(r, mods[s][2], None, self.eps, cu_seqlens=cu[s]))
            streams[s] = gated_rms_residual(r, m, mods[s][3], self.eps, cu_seqlens=cu[s])
        return streams["cond"], streams["x"]
