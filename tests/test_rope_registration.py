"""qk_norm_rope as a PyTorch operator (opcheck, torch.compile fullgraph, static and dynamic shapes),
the position helpers against a direct construction of LaVin-DiT's convention, and the modules."""

import pytest
import torch

from lavin_fast import reference as ref
from lavin_fast.rope import (QKNormRoPE, RotaryEmbedding3D, grid_positions, joint_positions,
                             packed_grid_positions, qk_norm_rope)
from tests.helpers import assert_close, f64, host_backend, randn

ops = torch.ops.lavin_fast


def _opcheck_samples():
    x = randn(9, 576)
    xb = randn(2, 3, 144, dtype=torch.bfloat16)
    w = randn(576, offset=1.0)
    pos = torch.randint(0, 9, (9, 3), dtype=torch.int32)
    posb = torch.randint(0, 9, (2, 3, 3), dtype=torch.int64)
    rstd = ops.qk_norm_rope(x, w, pos, 8, 1e-6, [24, 24, 24], [10000.0], False, True)[1]
    return [
        (ops.qk_norm_rope, (x, w, pos, 8, 1e-6, [24, 24, 24], [10000.0], False, True)),
        (ops.qk_norm_rope, (xb, None, posb, 2, 1e-5, [24, 24, 24], [1e4, 100.0, 10.0], True, False)),
        (ops.qk_norm_rope_backward, (randn(9, 576), x, w, pos, rstd, 8, [24, 24, 24], [10000.0], False, True,
                                     True)),
    ]


@pytest.mark.parametrize("backend", ["cpu", "simt"])
@pytest.mark.parametrize("i", range(3))
def test_opcheck(i, backend):
    op, args = _opcheck_samples()[i]
    differentiable = op is ops.qk_norm_rope
    args = tuple(a.detach().clone().requires_grad_(differentiable and a.is_floating_point())
                 if isinstance(a, torch.Tensor) else a for a in args)
    with host_backend(backend):
        torch.library.opcheck(op, args)


class _Attn(torch.nn.Module):
    """The QK half of a LaVin-DiT joint attention: projections, fused norm + RoPE."""

    def __init__(self, d=144, heads=4, kv_heads=2):
        super().__init__()
        self.q, self.k = torch.nn.Linear(d, d, bias=False), torch.nn.Linear(d, kv_heads * 36, bias=False)
        self.qn, self.kn = QKNormRoPE(d, heads), QKNormRoPE(kv_heads * 36, kv_heads)

    def forward(self, h, pos):
        return self.qn(self.q(h), pos), self.kn(self.k(h), pos)


@pytest.mark.parametrize("dynamic", [False, True])
def test_compile_fullgraph_with_backward(dynamic):
    m = _Attn()
    with torch.no_grad():
        m.qn.weight.copy_(randn(144, offset=1.0))
    h = randn(2, 6, 144).requires_grad_(True)
    pos = joint_positions(1, 1, 1, 3).reshape(1, 6, 3).expand(2, 6, 3)
    eager = m(h, pos)
    sum(t.square().sum() for t in eager).backward()
    g_eager, gw_eager = h.grad.clone(), m.qn.weight.grad.clone()
    h.grad, m.qn.weight.grad = None, None
    torch._dynamo.reset()
    compiled = torch.compile(m, fullgraph=True, dynamic=dynamic)
    out = compiled(h, pos)
    sum(t.square().sum() for t in out).backward()
    for a, b in zip(out, eager):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(h.grad, g_eager, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(m.qn.weight.grad, gw_eager, rtol=1e-5, atol=1e-5)
    if dynamic:  # another length reuses the graph
        h2 = randn(2, 12, 144)
        pos2 = joint_positions(1, 1, 2, 3).reshape(1, 12, 3).expand(2, 12, 3)
        for a, b in zip(compiled(h2, pos2), m(h2, pos2)):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


# ---- positions ----

def _release_joint_positions(T_cond, T_x, H, W):
    """LaVin-DiT's convention written out token by token: the joint sequence is condition frames then
    target frames, each frame an H x W grid in raster order; t = frame index, h/w restart every frame."""
    rows = []
    for f in range(T_cond + T_x):
        for i in range(H):
            for j in range(W):
                rows.append((f, i, j))
    return torch.tensor(rows, dtype=torch.int32)


@pytest.mark.parametrize("shape", [(9, 1, 4, 4), (3, 1, 2, 5), (2, 2, 1, 1)])
def test_joint_positions_match_release_convention(shape):
    got = joint_positions(*shape)
    assert got.dtype == torch.int32
    assert torch.equal(got, _release_joint_positions(*shape))


def test_grid_positions_follow_patchify_order():
    """Token n of ``B C F (H 2) (W 2) -> B (F H W) (2 2 C)`` is frame n // (H W), row (n // W) % H,
    column n % W."""
    T, H, W = 2, 3, 5
    latent = torch.arange(T * H * W).reshape(T, H, W)
    tokens = latent.reshape(-1)  # the (F H W) flattening of the patchify
    pos = grid_positions(T, H, W)
    assert torch.equal(latent[pos[:, 0], pos[:, 1], pos[:, 2]], tokens)


def test_packed_grid_positions():
    pos = packed_grid_positions([(1, 2, 2), (2, 1, 3)])
    assert pos.shape == (4 + 6, 3)
    assert torch.equal(pos[:4], grid_positions(1, 2, 2)) and torch.equal(pos[4:], grid_positions(2, 1, 3))
    assert packed_grid_positions([]).shape == (0, 3)


# ---- modules ----

def test_rotary_embedding_3d_packed_and_padded():
    rope = RotaryEmbedding3D(head_dim=72)
    assert rope.sections == [24, 24, 24] and len(rope.state_dict()) == 0
    q, k = randn(2, 12, 32, 72), randn(2, 12, 8, 72)
    pos = joint_positions(2, 1, 2, 2)  # (L, 3) shared by the batch
    q2, k2 = rope(q, k, pos)
    posb = pos.unsqueeze(0).expand(2, 12, 3)
    assert_close(q2, ref.apply_rope_3d(f64(q), posb), torch.float32, "q padded")
    assert_close(k2, ref.apply_rope_3d(f64(k), posb), torch.float32, "k padded")
    qp, kp = rope(q.reshape(24, 32, 72), k.reshape(24, 8, 72), posb.reshape(24, 3))
    assert torch.equal(qp, q2.reshape(24, 32, 72)) and torch.equal(kp, k2.reshape(24, 8, 72))
    hv = RotaryEmbedding3D(sections=(16, 56, 56), base=256, interleaved=True)
    x = randn(5, 2, 128)
    p5 = torch.randint(0, 30, (5, 3))
    assert_close(hv(x, x, p5)[0], ref.apply_rope_3d(f64(x), p5, (16, 56, 56), 256.0, True), torch.float32, "hv")


def test_qk_norm_rope_module_weight_name_and_values():
    m = QKNormRoPE(576, 8)
    assert set(m.state_dict()) == {"weight"} and m.weight.shape == (576,)
    with torch.no_grad():
        m.weight.copy_(randn(576, offset=1.0))
    x, pos = randn(7, 576), torch.randint(0, 5, (7, 3))
    assert_close(m(x, pos), ref.qk_norm_rope(f64(x), f64(m.weight), pos, 8), torch.float32, "module")
    assert qk_norm_rope(x, m.weight, pos, 8).shape == (7, 8, 72)
