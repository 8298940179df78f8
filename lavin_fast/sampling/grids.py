"""Time grids for the Euler sampler (t = 0 noise, t = 1 data)."""

import torch

# The released sampler: ten points evenly spaced in [0, 0.05], then a hand-made tail (19 Euler steps).
RELEASED_GRID = tuple([i * 0.05 / 9 for i in range(10)] +
                      [0.0524, 0.0730, 0.1148, 0.1777, 0.2618, 0.3671, 0.4936, 0.6412, 0.8100, 1.0])


def uniform_grid(steps):
    """steps + 1 evenly spaced points from 0 to 1 (the paper's description)."""
    if steps < 1:
        raise ValueError(f"uniform_grid: steps must be >= 1, got {steps}")
    return tuple(torch.linspace(0, 1, steps + 1, dtype=torch.float64).tolist())


def time_grid(grid):
    """"released", an int N (uniform N steps) or an explicit increasing sequence ending at 1."""
    if grid == "released":
        return RELEASED_GRID
    if isinstance(grid, int):
        return uniform_grid(grid)
    grid = tuple(float(v) for v in grid)
    if len(grid) < 2 or any(b <= a for a, b in zip(grid, grid[1:])):
        raise ValueError(f"time grid must be increasing with at least 2 points, got {grid}")
    return grid
