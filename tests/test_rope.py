"""qk_norm_rope against the float64 reference: forward and gradients, every backend, the released shapes
(head_dim 72 with 32 and 8 heads), other head dims, both pairings, custom sections and bases, packed
and padded layouts."""

import pytest
import torch

from lavin_fast import reference as ref
from lavin_fast.rope import apply_rope_3d, packed_grid_positions, qk_norm_rope
from tests.helpers import DTYPES, assert_close, assert_grad_close, device_of, f64, randn, run_on, with_backends


def random_positions(*lead, high=40):
    return torch.randint(0, high, (*lead, 3), dtype=torch.int32)


# (num_heads, head_dim, sections, bases, interleaved)
CONFIGS = [
    (32, 72, None, 10000.0, False),  # LaVin-DiT q
    (8, 72, None, 10000.0, False),  # LaVin-DiT k
    (8, 72, None, 10000.0, True),
    (4, 64, (16, 24, 24), (10000.0, 500.0, 2.0), False),
    (2, 128, (16, 56, 56), 256.0, True),  # HunyuanVideo-style split
    (3, 18, (0, 10, 8), 10000.0, False),  # an empty section
]


def _case(backend, dtype, cfg, lead, weight=True, normalize=True, positions=None):
    h, d, sections, bases, interleaved = cfg
    dev = device_of(backend)
    x = randn(*lead, h * d, dtype=dtype).to(dev)
    w = randn(h * d, offset=1.0, scale=0.2).to(dev) if weight else None
    pos = (random_positions(*lead) if positions is None else positions).to(dev)
    kw = dict(sections=sections, bases=bases, interleaved=interleaved)
    y = run_on(backend, lambda: qk_norm_rope(x, w, pos, h, eps=1e-6, normalize=normalize, **kw))
    expected = ref.qk_norm_rope(f64(x).cpu(), f64(w).cpu() if weight else None, pos.cpu(), h, eps=1e-6,
                                normalize=normalize, **kw)
    return y, expected


@with_backends("backend,dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"h{c[0]}d{c[1]}{'i' if c[4] else 'r'}")
def test_forward_packed(backend, dtype, cfg):
    rows = 7 if backend == "simt" else 97
    y, expected = _case(backend, dtype, cfg, (rows,))
    assert y.shape == (rows, cfg[0], cfg[1])
    assert_close(y.cpu(), expected, dtype, "y")


@with_backends("backend")
@pytest.mark.parametrize("weight,normalize", [(True, True), (False, True), (True, False), (False, False)])
def test_forward_padded_options(backend, weight, normalize):
    y, expected = _case(backend, torch.float32, CONFIGS[1], (2, 5), weight=weight, normalize=normalize)
    assert y.shape == (2, 5, 8, 72)
    assert_close(y.cpu(), expected, torch.float32, "y")


@with_backends("backend")
def test_packed_grids_and_large_positions(backend):
    """Positions of packed samples of several grids, and positions in the thousands (long videos): the
    angle keeps fp32 accuracy (the kernels correct the rounding of pos * inv_freq)."""
    pos = packed_grid_positions([(2, 3, 4), (1, 1, 1), (1, 2, 5)])
    y, expected = _case(backend, torch.float32, CONFIGS[1], (pos.shape[0],), positions=pos)
    assert_close(y.cpu(), expected, torch.float32, "packed grids")
    pos = torch.randint(0, 5000, (9, 3), dtype=torch.int32)
    y, expected = _case(backend, torch.float32, CONFIGS[1], (9,), positions=pos)
    assert_close(y.cpu(), expected, torch.float32, "large positions")


def test_int64_positions_and_strided_x():
    """int64 positions and a q sliced out of a fused qkv projection (row stride != W) work."""
    qkv = randn(11, 3 * 576)
    q = qkv[:, :576]
    pos = random_positions(11).long()
    y = qk_norm_rope(q, None, pos, 8)
    assert_close(y, ref.qk_norm_rope(f64(q), None, pos, 8), torch.float32, "strided")


def test_empty_input():
    y = qk_norm_rope(randn(0, 576), randn(576), random_positions(0), 8)
    assert y.shape == (0, 8, 72)


@with_backends("backend,dtype", DTYPES)
@pytest.mark.parametrize("cfg", [CONFIGS[0], CONFIGS[2], CONFIGS[4]], ids=["q", "k-interleaved", "d128"])
def test_gradients(backend, dtype, cfg):
    h, d, sections, bases, interleaved = cfg
    rows = 5 if backend == "simt" else 67  # > 64 rows: several grad_weight blocks on the CPU
    dev = device_of(backend)
    x = randn(rows, h * d, dtype=dtype).to(dev).requires_grad_(True)
    w = randn(h * d, offset=1.0, scale=0.2, dtype=dtype).to(dev).requires_grad_(True)
    pos = random_positions(rows).to(dev)
    g = randn(rows, h, d, dtype=dtype).to(dev)
    kw = dict(sections=sections, bases=bases, interleaved=interleaved)

    def run():
        y = qk_norm_rope(x, w, pos, h, **kw)
        return torch.autograd.grad(y, (x, w), g)

    gx, gw = run_on(backend, run)
    x64, w64 = f64(x).cpu().requires_grad_(True), f64(w).cpu().requires_grad_(True)
    rx, rw = torch.autograd.grad(ref.qk_norm_rope(x64, w64, pos.cpu(), h, **kw), (x64, w64), f64(g).cpu())
    # Plain PyTorch in the same dtype: the baseline for where bf16 cancels.
    xb, wb = x.detach().cpu().requires_grad_(True), w.detach().cpu().requires_grad_(True)
    bx, bw = torch.autograd.grad(ref.qk_norm_rope(xb, wb, pos.cpu(), h, **kw), (xb, wb), g.cpu())
    assert gx.dtype == dtype and gw.dtype == dtype
    assert_grad_close(gx.cpu(), rx, dtype, "grad_x", baseline=bx)
    assert_grad_close(gw.cpu(), rw, dtype, "grad_weight", baseline=bw)


@with_backends("backend")
def test_gradients_without_normalize_padded(backend):
    x = randn(2, 3, 576).requires_grad_(True)
    w = randn(576, offset=1.0).requires_grad_(True)
    pos = random_positions(2, 3)
    g = randn(2, 3, 8, 72)
    gx, gw = run_on(backend, lambda: torch.autograd.grad(qk_norm_rope(x, w, pos, 8, normalize=False), (x, w), g))
    x64, w64 = f64(x).requires_grad_(True), f64(w).requires_grad_(True)
    rx, rw = torch.autograd.grad(ref.qk_norm_rope(x64, w64, pos, 8, normalize=False), (x64, w64), f64(g))
    assert_grad_close(gx, rx, torch.float32, "grad_x")
    assert_grad_close(gw, rw, torch.float32, "grad_weight")


def test_backward_deterministic_across_threads():
    """grad_weight is reduced in an order fixed by the shapes: 1 and 2 threads agree bitwise."""
    x = randn(300, 576).requires_grad_(True)
    w = randn(576, offset=1.0).requires_grad_(True)
    pos, g = random_positions(300), randn(300, 8, 72)
    before = torch.get_num_threads()
    out = []
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            out.append(torch.autograd.grad(qk_norm_rope(x, w, pos, 8), (x, w), g))
    finally:
        torch.set_num_threads(before)
    assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1], out[1][1])


def test_table_and_direct_cos_sin_agree(monkeypatch):
    """The CPU kernel's two sources of cos/sin (per-call table, on-the-fly sincos) both meet fp32
    accuracy: positions spanning more values than the table holds take the direct path."""
    x = randn(40, 576)
    pos = torch.randint(0, 200000, (40, 3), dtype=torch.int32)  # too many distinct values for a table
    assert_close(qk_norm_rope(x, None, pos, 8), ref.qk_norm_rope(f64(x), None, pos, 8), torch.float32, "direct")


def test_apply_rope_3d_matches_reference():
    x = randn(6, 4, 72)
    pos = random_positions(6)
    assert_close(apply_rope_3d(x, pos), ref.apply_rope_3d(f64(x), pos), torch.float32, "rope only")


def test_release_cos_sin_reference_close_to_fp32():
    """The release convention (cos/sin rounded to bf16 before rotating) differs from fp32 math by bf16
    rounding only."""
    x = randn(16, 576, dtype=torch.bfloat16)
    w = randn(576, offset=1.0, dtype=torch.bfloat16)
    pos = random_positions(16)
    rel = ref.qk_norm_rope(x, w, pos, 8, release_cos_sin=True)
    assert rel.dtype == torch.bfloat16
    torch.testing.assert_close(rel.double(), ref.qk_norm_rope(f64(x), f64(w), pos, 8), rtol=3e-2, atol=3e-2)
