"""Time grids for the Euler sampler (t = 0 noise, t = 1 data)."""

import torch

# The released sampler's hand-made grids (lib/transport/integrators.py of the release), keyed by their
# number of points (the release's --timesteps): evenly spaced up to 0.05 (written to 4 decimals), then a
# tail that widens towards t = 1. The release ships these three and no other.
RELEASED_GRIDS = {
    20: (0.0, 0.0056, 0.0111, 0.0167, 0.0222, 0.0278, 0.0333, 0.0389, 0.0444, 0.05,
         0.0524, 0.0730, 0.1148, 0.1777, 0.2618, 0.3671, 0.4936, 0.6412, 0.8100, 1.0),
    30: (0.0, 0.0036, 0.0071, 0.0107, 0.0143, 0.0179, 0.0214, 0.0250, 0.0286, 0.0321,
         0.0357, 0.0393, 0.0429, 0.0464, 0.05, 0.0511, 0.0600, 0.0779, 0.1049, 0.1410,
         0.1862, 0.2403, 0.3036, 0.3759, 0.4573, 0.5477, 0.6472, 0.7557, 0.8733, 1.0),
    40: (0.0, 0.0026, 0.0053, 0.0079, 0.0105, 0.0132, 0.0158, 0.0184, 0.0211, 0.0237,
         0.0263, 0.0289, 0.0316, 0.0342, 0.0368, 0.0395, 0.0421, 0.0447, 0.0474, 0.05,
         0.0506, 0.0555, 0.0655, 0.0804, 0.1004, 0.1253, 0.1553, 0.1902, 0.2302, 0.2752,
         0.3251, 0.3801, 0.4401, 0.5051, 0.5750, 0.6500, 0.7300, 0.8150, 0.9050, 1.0),
}
RELEASED_GRID = RELEASED_GRIDS[20]  # the release's default (--timesteps 20: 19 Euler steps)


def uniform_grid(steps):
    """steps + 1 evenly spaced points from 0 to 1 (the paper's description)."""
    if steps < 1:
        raise ValueError(f"uniform_grid: steps must be >= 1, got {steps}")
    return tuple(torch.linspace(0, 1, steps + 1, dtype=torch.float64).tolist())


def grid_of_points(points):
    """The grid the release's --timesteps N means: its hand-made grid for N = 20, 30, 40; otherwise N
    evenly spaced points (its commented-out linspace(0, 1, N)). N points are N - 1 Euler steps."""
    if points < 2:
        raise ValueError(f"grid_of_points: a grid needs at least 2 points, got {points}")
    return RELEASED_GRIDS.get(points) or uniform_grid(points - 1)


def time_grid(grid):
    """"released" (the 20-point grid), an int N (N uniform steps) or an explicit increasing
    sequence of points."""
    if grid == "released":
        return RELEASED_GRID
    if isinstance(grid, int):
        return uniform_grid(grid)
    grid = tuple(float(v) for v in grid)
    if len(grid) < 2 or any(b <= a for a, b in zip(grid, grid[1:])):
        raise ValueError(f"time grid must be increasing with at least 2 points, got {grid}")
    return grid
