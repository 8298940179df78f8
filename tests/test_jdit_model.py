"""lavin_fast's J-DiT: released keys and shapes, golden output, padded and packed forward vs the
reference model, the drop-in modules."""

import json

import pytest
import torch

from helpers import counting_backend
from jdit_cases import RELEASED, RELEASED_KEYS, SMALL, golden, latents, pair
from lavin_fast.models.jdit import Attention, Block, FinalLayer, JointLayout, LaVinDiT, RotaryEmbedding3D
from lavin_fast.models.jdit import TimestepEmbedder
from lavin_fast.reference import jdit as ref_jdit


def test_released_config_has_released_keys_and_shapes():
    model = LaVinDiT(**RELEASED, device="meta")
    got = {k: list(v.shape) for k, v in model.state_dict().items()}
    want = json.load(open(RELEASED_KEYS))
    assert set(got) == set(want)
    assert got == want
    assert sum(v.numel() for v in model.state_dict().values()) == 3_398_976_064


def test_golden_weights_load_strictly_and_reproduce_output():
    cfg, sd, (x, t, cond), want = golden()
    model = LaVinDiT(**cfg)
    model.load_state_dict(sd, strict=True)
    assert all(p.dtype == sd[k].dtype for k, p in model.state_dict().items())
    with torch.no_grad():
        got = model(x, t, cond)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        # The same two samples packed as a list.
        outs = model([x[0], x[1]], t, [cond[0], cond[1]])
    for i in range(2):
        torch.testing.assert_close(outs[i], want[i], rtol=1e-5, atol=1e-5)


def test_padded_forward_matches_reference():
    ref, fast = pair(SMALL, seed=1)
    x, cond = latents(2, 1, 4, 6), latents(2, 5, 4, 6)
    t = torch.tensor([0.3, 0.9])
    with torch.no_grad():
        torch.testing.assert_close(fast(x, t, cond), ref(x, t, cond), rtol=1e-5, atol=1e-5)


def test_packed_mixed_samples_match_reference_per_sample():
    ref, fast = pair(SMALL, seed=2)
    # Different resolutions, numbers of in-context frames (pairs), target frames; a 1x1 grid.
    shapes = [(5, 1, 4, 6), (3, 1, 8, 8), (1, 1, 1, 1), (9, 1, 3, 2), (2, 2, 2, 5)]
    xs = [latents(1, tx, h, w)[0] for tc, tx, h, w in shapes]
    conds = [latents(1, tc, h, w)[0] for tc, tx, h, w in shapes]
    t = torch.rand(len(shapes))
    with torch.no_grad():
        outs = fast(xs, t, conds)
        for i in range(len(shapes)):
            want = ref(xs[i][None], t[i:i + 1], conds[i][None])[0]
            torch.testing.assert_close(outs[i], want, rtol=1e-5, atol=1e-5)


def test_released_width_attention_matches_reference():
    """Joint attention at the released width (hidden 2304, 32/8 heads, head_dim 72), 2 samples."""
    ref = ref_jdit.JointAttention(2304, 32, 4)
    fast = Attention(2304, 32, 4)
    with torch.no_grad():
        for p in ref.parameters():
            p.normal_(0, 0.02)
    fast.load_state_dict(ref.state_dict(), strict=True)
    c, x = torch.randn(2, 2 * 2 * 3, 2304), torch.randn(2, 2 * 3, 2304)
    cos, sin = ref_jdit.RotaryEmbedding3D(72)(3, 2, 3)
    with torch.no_grad():
        want = ref(c, x, cos, sin, (24, 24, 24))
        got = fast(c, x, grid=(2, 1, 2, 3))
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


def test_dropin_attention_padded_equals_packed():
    attn = Attention(144, 2, kv_group=2)
    with torch.no_grad():
        for p in attn.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    grid = (3, 1, 2, 4)
    c, x = torch.randn(3, 24, 144), torch.randn(3, 8, 144)
    with torch.no_grad():
        pc, px = attn(c, x, grid=grid)
        layout = JointLayout.build([grid] * 3)
        qc, qx = attn(c.flatten(0, 1), x.flatten(0, 1), layout)
        one_c, one_x = attn(c[2:], x[2:], grid=grid)
    torch.testing.assert_close(pc.flatten(0, 1), qc)
    torch.testing.assert_close(px.flatten(0, 1), qx)
    torch.testing.assert_close(pc[2:], one_c, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(px[2:], one_x, rtol=1e-5, atol=1e-5)
    keys = set(attn.state_dict())
    assert keys == {f"{s}_{n}.weight" for s in ("cond", "x")
                    for n in ("q", "k", "v", "proj", "qnorm", "knorm")}
    with pytest.raises(ValueError, match="padded input .* needs grid"):
        attn(c, x)
    with pytest.raises(ValueError, match=r"grid \(3, 1, 2, 5\) gives 30 condition"):
        attn(c, x, grid=(3, 1, 2, 5))


def test_dropin_small_modules_match_reference():
    t = torch.rand(4)
    te, rte = TimestepEmbedder(96), ref_jdit.TimestepEmbedder(96)
    te.load_state_dict(rte.state_dict(), strict=True)
    torch.testing.assert_close(te(t), rte(t))
    fl, rfl = FinalLayer(96), ref_jdit.FinalLayer(96)
    with torch.no_grad():
        for p in rfl.parameters():
            p.normal_()
    fl.load_state_dict(rfl.state_dict(), strict=True)
    x, c = torch.randn(2, 7, 96), torch.randn(2, 96)
    # Against the float64 reference: two fp32 GEMMs (oneDNN vs MKL) differ by their own rounding.
    ref_out = rfl.double()(x.double(), c.double())
    torch.testing.assert_close(fl(x, c).double(), ref_out, rtol=1e-5, atol=1e-5 * ref_out.abs().max().item())
    # RotaryEmbedding3D (lavin_fast.rope's) on packed and padded q/k vs the reference tables.
    from lavin_fast.packing import joint_positions
    rope = RotaryEmbedding3D(head_dim=72)
    pos = joint_positions(3, 1, 2, 3)
    q, k = torch.randn(24, 4, 72), torch.randn(24, 1, 72)
    cos, sin = ref_jdit.RotaryEmbedding3D(72)(4, 2, 3)
    rq, rk = rope(q, k, pos)
    torch.testing.assert_close(rq, ref_jdit.apply_rope(q, cos, sin, (24, 24, 24)), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rk, ref_jdit.apply_rope(k, cos, sin, (24, 24, 24)), rtol=1e-5, atol=1e-5)
    pq, _ = rope(q.expand(2, -1, -1, -1), k.expand(2, -1, -1, -1), pos)
    torch.testing.assert_close(pq[1], rq)


def test_timestep_embedding_equals_the_reference_formula():
    # The product states the reference's formula again (the reference stays the spec): bit for bit.
    from lavin_fast.models.jdit.layers import timestep_embedding
    t = torch.rand(5)
    for tt, dim in ((t, 256), (t.double(), 256), (t, 7), (t.half(), 16)):
        got, want = timestep_embedding(tt, dim), ref_jdit.timestep_embedding(tt, dim)
        assert got.dtype == want.dtype and torch.equal(got, want)
    assert TimestepEmbedder.timestep_embedding is timestep_embedding


def test_bad_input_errors():
    model = LaVinDiT(144, 1, 2, 2)
    with pytest.raises(ValueError, match=r"must be \(B, T, H, W, 64\)"):
        model(torch.randn(1, 1, 2, 2, 16), torch.rand(1), torch.randn(1, 3, 2, 2, 64))
    with pytest.raises(ValueError, match="must share B, H and W"):
        model(torch.randn(1, 1, 2, 3, 64), torch.rand(1), torch.randn(1, 3, 2, 2, 64))
    with pytest.raises(ValueError, match="num_heads % kv_group"):
        LaVinDiT(144, 1, 2, 4)


def test_joint_layout_orders_and_offsets():
    lay = JointLayout.build([(2, 1, 2, 3), (0, 1, 1, 2), (1, 2, 1, 1)])
    assert lay.cu_cond.tolist() == [0, 12, 12, 13] and lay.cu_x.tolist() == [0, 6, 8, 10]
    assert lay.cu_joint.tolist() == [0, 18, 20, 23] and lay.max_joint == 18
    c, x = torch.randn(13, 5), torch.randn(10, 5)
    j = lay.to_joint(c, x)
    torch.testing.assert_close(j[18:20], x[6:8])        # sample 1 has no condition frames
    torch.testing.assert_close(j[20:21], c[12:13])
    back_c, back_x = lay.from_joint(j)
    assert torch.equal(back_c, c) and torch.equal(back_x, x)
    # Positions: the target frame follows the condition frames, h and w restart per frame.
    assert lay.pos_x[:6, 0].tolist() == [2] * 6 and lay.pos_x[6].tolist() == [0, 0, 0]
    assert lay.pos_cond[12].tolist() == [0, 0, 0] and lay.pos_x[8:].tolist() == [[1, 0, 0], [2, 0, 0]]


def test_compiled_packed_attention_does_not_recompile_per_layout():
    """The packed (padding-free) joint attention, compiled, over batches of different resolutions: the
    longest joint segment (layout.max_joint, passed as max_seqlen) and the token counts change every
    batch but stay symbolic, so the step compiles at most twice."""
    torch._dynamo.reset()
    attn = Attention(72, 2, kv_group=2)
    graphs = []
    step = torch.compile(attn, backend=counting_backend(graphs), fullgraph=True, dynamic=True)
    for i in range(8):
        layout = JointLayout.build([(1, 2, 2 + i % 3, 3 + i), (3, 1, 3, 2 + (i * 5) % 7)])  # N_c != N_x
        c, x = torch.randn(layout.n_cond, 72), torch.randn(layout.n_x, 72)
        out_c, out_x = step(c, x, layout)
        (out_c.sum() + out_x.square().sum()).backward()
        want_c, want_x = attn(c, x, layout)
        torch.testing.assert_close(out_c, want_c, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(out_x, want_x, rtol=1e-5, atol=1e-5)
    assert len(graphs) <= 2, f"{len(graphs)} compiles for 8 layouts"
