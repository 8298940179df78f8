"""Block-sparse attention masks over (query tile, key tile) pairs.

A TileMask is a bool tensor (S, n_tiles_q, n_tiles_k) plus the tile sizes: query i of segment s may
see key j only when mask[s, i // tile_q, j // tile_k] (indices relative to the segment's start). Tiles
that are False cost no compute; combine with ``causal`` or frame ids for masks finer than a tile.
"""

import numbers
from dataclasses import dataclass

import torch


def _int_arg(name, v, minimum):
    """v as an int >= minimum (bool is no size; SymInts pass as they are, for torch.compile)."""
    if isinstance(v, torch.SymInt):
        return v
    if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < minimum:
        raise ValueError(f"TileMask: '{name}' must be an int {'> 0' if minimum else '>= 0'}, got {v!r}")
    return int(v)


@dataclass(frozen=True)
class TileMask:
    mask: torch.Tensor  # bool (S, ceil(max_seqlen_q / tile_q), ceil(max_seqlen_k / tile_k))
    tile_q: int
    tile_k: int

    def __post_init__(self):
        if not isinstance(self.mask, torch.Tensor) or self.mask.dtype != torch.bool or self.mask.dim() != 3:
            raise ValueError("TileMask: 'mask' must be a 3-D bool tensor (S, n_tiles_q, n_tiles_k), got "
                             + (f"{self.mask.dtype} of shape {tuple(self.mask.shape)}"
                                if isinstance(self.mask, torch.Tensor) else type(self.mask).__name__))
        for name in ("tile_q", "tile_k"):  # frozen: set through object.__setattr__
            object.__setattr__(self, name, _int_arg(name, getattr(self, name), 1))

    @staticmethod
    def num_tiles(max_seqlen_q, max_seqlen_k, tile_q, tile_k):
        tile_q, tile_k = _int_arg("tile_q", tile_q, 1), _int_arg("tile_k", tile_k, 1)
        if not torch.compiler.is_compiling():  # a symbolic max_seqlen must not be compared (guards)
            max_seqlen_q = _int_arg("max_seqlen_q", max_seqlen_q, 0)
            max_seqlen_k = _int_arg("max_seqlen_k", max_seqlen_k, 0)
        # Integer ceil division: exact for any size, and SymInt max_seqlen (torch.compile) stays
        # symbolic (math.ceil of a true division would go through a float and specialise).
        return -(-max_seqlen_q // tile_q), -(-max_seqlen_k // tile_k)

    @staticmethod
    def _grid(num_segments, max_seqlen_q, max_seqlen_k, tile_q, tile_k):
        """(num_segments, n_tiles_q, n_tiles_k) of a new mask, every size checked."""
        return (_int_arg("num_segments", num_segments, 0),
                *TileMask.num_tiles(max_seqlen_q, max_seqlen_k, tile_q, tile_k))

    @classmethod
    def from_dense(cls, mask, tile_q, tile_k):
        """From a dense boolean tile mask (S, n_tiles_q, n_tiles_k) or (n_tiles_q, n_tiles_k) (the same
        for every segment; give num_segments through expand/repeat for a 3-D mask)."""
        mask = torch.as_tensor(mask, dtype=torch.bool)
        if mask.dim() == 2:
            mask = mask.unsqueeze(0)
        return cls(mask.contiguous(), tile_q, tile_k)

    @classmethod
    def full(cls, num_segments, max_seqlen_q, max_seqlen_k, tile_q=64, tile_k=64, device="cpu"):
        num_segments, nq, nk = cls._grid(num_segments, max_seqlen_q, max_seqlen_k, tile_q, tile_k)
        return cls(torch.ones(num_segments, nq, nk, dtype=torch.bool, device=device), tile_q, tile_k)

    @classmethod
    def from_function(cls, fn, num_segments, max_seqlen_q, max_seqlen_k, tile_q=64, tile_k=64,
                      device="cpu"):
        """fn(s, tq, tk) -> bool (broadcasting over int64 tensors) for segment s, query tile tq and key
        tile tk."""
        num_segments, nq, nk = cls._grid(num_segments, max_seqlen_q, max_seqlen_k, tile_q, tile_k)
        s = torch.arange(num_segments, device=device)[:, None, None]
        tq = torch.arange(nq, device=device)[None, :, None]
        tk = torch.arange(nk, device=device)[None, None, :]
        m = torch.as_tensor(fn(s, tq, tk), device=device).to(torch.bool)
        return cls(m.expand(num_segments, nq, nk).contiguous(), tile_q, tile_k)

    @classmethod
    def local(cls, num_segments, max_seqlen, window_tiles, tile=64, causal=False, device="cpu"):
        """Sliding window over tiles: query tile tq sees key tiles within window_tiles of it (only
        earlier ones when causal)."""
        lo = window_tiles
        hi = 0 if causal else window_tiles
        return cls.from_function(lambda s, tq, tk: (tk >= tq - lo) & (tk <= tq + hi), num_segments,
                                 max_seqlen, max_seqlen, tile, tile, device)

    @classmethod
    def block_causal(cls, num_segments, max_seqlen, tokens_per_block, device="cpu"):
        """Chunked causal attention with chunks of tokens_per_block tokens (one tile per chunk): a token
        sees its own and the earlier chunks of its segment."""
        return cls.from_function(lambda s, tq, tk: tk <= tq, num_segments, max_seqlen, max_seqlen,
                                 tokens_per_block, tokens_per_block, device)

    @classmethod
    def random(cls, num_segments, max_seqlen_q, max_seqlen_k, density, tile_q=64, tile_k=64,
               generator=None, device="cpu"):
        """Each tile visible with probability `density` (benchmarks of the block-sparse path)."""
        num_segments, nq, nk = cls._grid(num_segments, max_seqlen_q, max_seqlen_k, tile_q, tile_k)
        m = torch.rand(num_segments, nq, nk, generator=generator) < density
        return cls(m.to(device), tile_q, tile_k)

    def density(self):
        """Fraction of visible tiles."""
        return self.mask.float().mean().item() if self.mask.numel() else 0.0
