"""In-context sampling: packed CFG equals the two separate forwards; grids; VAE plumbing; progress."""

import io

import pytest
import torch
import torch.nn.functional as F

from jdit_cases import pair
from lavin_fast.sampling import (RELEASED_GRID, RELEASED_GRIDS, InContextRequest, grid_of_points, sample,
                                 time_grid, uniform_grid)

CFG = dict(hidden_size=144, depth=2, num_heads=2, kv_group=2)


def _frame(h, w):
    return torch.randn(16, h, w)


def _requests():
    # Different resolutions and numbers of pairs (0 pairs: the condition is just the query).
    return [InContextRequest([(_frame(4, 6), _frame(4, 6)), (_frame(4, 6), _frame(4, 6))], _frame(4, 6)),
            InContextRequest([(_frame(6, 4), _frame(6, 4))], _frame(6, 4)),
            InContextRequest([], _frame(2, 2))]


def test_grids():
    assert len(RELEASED_GRID) == 20 and RELEASED_GRID[0] == 0.0 and RELEASED_GRID[-1] == 1.0
    assert RELEASED_GRID[9] == pytest.approx(0.05) and RELEASED_GRID[10] == 0.0524
    assert all(b > a for a, b in zip(RELEASED_GRID, RELEASED_GRID[1:]))
    assert uniform_grid(4) == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert time_grid(2) == (0.0, 0.5, 1.0) and time_grid("released") == RELEASED_GRID
    with pytest.raises(ValueError, match="increasing"):
        time_grid([0.0, 0.5, 0.5])


@pytest.mark.parametrize("points", [20, 30, 40])
def test_released_grids(points):
    """The release's three hand-made grids: N points, evenly spaced (to 4 decimals) up to 0.05, then a
    tail with growing steps; --timesteps N means N points, N - 1 Euler steps."""
    g = RELEASED_GRIDS[points]
    assert grid_of_points(points) == g and len(g) == points and g[0] == 0.0 and g[-1] == 1.0
    head = g[:g.index(0.05) + 1]
    step = 0.05 / (len(head) - 1)
    assert all(abs(v - i * step) <= 5e-5 for i, v in enumerate(head))  # written to 4 decimals
    tail = [b - a for a, b in zip(g[len(head) - 1:], g[len(head):])]
    assert all(d > 0 for d in tail) and tail[-1] > 10 * step
    assert RELEASED_GRID == RELEASED_GRIDS[20] and RELEASED_GRID[1] == 0.0056  # the release's literal values


def test_grid_of_other_point_counts_is_uniform():
    assert grid_of_points(2) == (0.0, 1.0) and grid_of_points(5) == uniform_grid(4)
    with pytest.raises(ValueError, match="at least 2 points"):
        grid_of_points(1)


def test_packed_cfg_equals_two_separate_forwards():
    _, model = pair(CFG, seed=7)
    reqs = _requests()
    noise = [torch.randn(1, q.shape[1] // 2, q.shape[2] // 2, 64) for q in (r.query for r in reqs)]
    packed = sample(model, reqs, grid=2, noise=noise, progress=False)
    two = sample(model, reqs, grid=2, noise=noise, packed=False, progress=False)
    for a, b, r in zip(packed, two, reqs):
        assert a.shape == r.query.shape
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_cfg_scale_and_unconditional_branch():
    """Scale 0 gives the unconditional branch alone: the pairs must not matter then."""
    _, model = pair(CFG, seed=8)
    q = _frame(4, 4)
    noise = [torch.randn(1, 2, 2, 64)]
    a = sample(model, [InContextRequest([(_frame(4, 4), _frame(4, 4))], q)], grid=2, cfg_scale=0.0,
               noise=noise, progress=False)[0]
    b = sample(model, [InContextRequest([(_frame(4, 4), _frame(4, 4))] * 2, q)], grid=2, cfg_scale=0.0,
               noise=noise, progress=False)[0]
    c = sample(model, [InContextRequest([(_frame(4, 4), _frame(4, 4))], q)], grid=2, cfg_scale=1.5,
               noise=noise, progress=False)[0]
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert (a - c).abs().max() > 1e-3


class ToyVAE:
    """8x down/up-sampling with fixed channel maps: enough to check the encode/decode plumbing."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.enc, self.dec = torch.randn(16, 3, generator=g), torch.randn(3, 16, generator=g)

    def encode(self, x):  # (B, 3, T, H, W) -> (mean, logvar) like a posterior's moments
        z = torch.einsum("oc,bcthw->bothw", self.enc, F.avg_pool3d(x, (1, 8, 8)))
        return z, torch.zeros_like(z)

    def decode(self, z):  # (B, 16, T, h, w) -> (B, 3, T, 8h, 8w)
        return F.interpolate(torch.einsum("oc,bcthw->bothw", self.dec, z), scale_factor=(1, 8, 8))


def test_sampling_with_vae_images_in_images_out():
    _, model = pair(CFG, seed=9)
    img = lambda: torch.rand(3, 32, 48) * 2 - 1  # noqa: E731
    out = sample(model, [InContextRequest([(img(), img())], img())], grid=2, vae=ToyVAE(),
                 generator=torch.Generator().manual_seed(0), progress=False)
    assert out[0].shape == (3, 32, 48) and torch.isfinite(out[0]).all()


def test_progress_is_a_tqdm_bar_on_terminals_only():
    """progress=True: a tqdm bar of the Euler steps (count, rate); None (default): only on a terminal,
    so logs and pipes stay clean; False: never."""
    _, model = pair(CFG, seed=3)
    reqs = _requests()[:2]
    shown = io.StringIO()
    sample(model, reqs, grid=3, progress=True, stream=shown, generator=torch.Generator().manual_seed(0))
    text = shown.getvalue()
    assert "sampling 2 requests" in text and "3/3" in text and ("step/s" in text or "s/step" in text), text
    for progress in (None, False):
        quiet = io.StringIO()  # not a terminal
        sample(model, reqs, grid=3, progress=progress, stream=quiet, generator=torch.Generator().manual_seed(0))
        assert quiet.getvalue() == ""


def test_sampling_with_the_small_st_vae():
    """The real ST-VAE class (small golden configuration): images in, images out."""
    from lavin_fast.checkpoint import load_stvae
    from tests.stvae_helpers import GOLDEN
    vae = load_stvae(GOLDEN)
    _, model = pair(CFG, seed=10)
    img = lambda: torch.rand(3, 32, 48) * 2 - 1  # noqa: E731
    out = sample(model, [InContextRequest([(img(), img())], img())], grid=1, vae=vae,
                 generator=torch.Generator().manual_seed(0), progress=False)
    assert out[0].shape == (3, 32, 48) and torch.isfinite(out[0]).all()
