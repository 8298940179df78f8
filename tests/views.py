"""Strided views of a tensor argument, for the tests that every op reads any layout right: each kind
is built from a base tensor, so gradients flow back to the base through the view."""

import torch

from tests.helpers import randn

# transposed: dimensions in reverse memory order; every_other: last dimension with stride 2;
# expanded: stride 0 in dimension 0; broadcast_last: stride 0 in the last dimension; offset: a
# storage offset; channels_last: channels-last-3d (5-D only, else the plain tensor).
KINDS = ["transposed", "every_other", "expanded", "broadcast_last", "offset", "channels_last"]


def strided(shape, kind, dtype=torch.float32, scale=1.0):
    """-> (base, view_fn): view_fn(base) (or view_fn of a float64 copy of base) has `shape` and the
    layout `kind`. base is a fresh tensor the caller may make a leaf."""
    shape = tuple(shape)
    if kind == "transposed":
        base = randn(*shape[::-1], dtype=dtype, scale=scale)
        return base, lambda b: b.permute(*range(b.dim() - 1, -1, -1))
    if kind == "every_other":
        base = randn(*shape[:-1], 2 * shape[-1], dtype=dtype, scale=scale)
        return base, lambda b: b[..., ::2]
    if kind == "expanded":
        base = randn(1, *shape[1:], dtype=dtype, scale=scale)
        return base, lambda b: b.expand(shape)
    if kind == "broadcast_last":
        base = randn(*shape[:-1], 1, dtype=dtype, scale=scale)
        return base, lambda b: b.expand(shape)
    if kind == "offset":
        base = randn(shape[0] + 1, *shape[1:], dtype=dtype, scale=scale)
        return base, lambda b: b[1:]
    if kind == "channels_last":
        base = randn(*shape, dtype=dtype, scale=scale)
        if len(shape) != 5:
            return base, lambda b: b
        return base, lambda b: b.contiguous(memory_format=torch.channels_last_3d)
    raise ValueError(kind)
