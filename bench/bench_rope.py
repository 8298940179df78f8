"""Fused QK RMSNorm + 3-D RoPE at the released model's shapes: lavin_fast.qk_norm_rope vs the eager
norm + RoPE as LaVin-DiT computes it (reference with release_cos_sin=True) vs torch.compile of that,
forward and forward+backward, fp32 and bf16, for q (2304 wide, 32 heads) and k (576 wide, 8 heads) of
T = 10240 joint tokens (4 in-context pairs at 512x512). Each lavin_fast benchmark is paired with a
copy_ of the same (T, W) activation timed around it (bench/timing.py).

Bytes that must move (N = T * W elements of e bytes, weight W * p bytes, positions 12 T bytes):
  forward  x, y: 2Ne + Wp + 12T        backward  grad_y, x, grad_x: 3Ne + 2Wp + 12T
"""

import functools

import pytest
import torch

import lavin_fast
from lavin_fast.reference import rope as reference
from lavin_fast.rope import joint_positions

T = 10240
CASES = {"q": (2304, 32), "k": (576, 8)}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
PASSES = ("fwd", "fwd+bwd")
IMPLS = ("lavin_fast", "eager", "compile")
EPS = 1e-6


def lavin(x, w, pos, heads):
    return lavin_fast.qk_norm_rope(x, w, pos, heads, eps=EPS)


def eager(x, w, pos, heads):
    return reference.qk_norm_rope(x, w, pos, heads, eps=EPS, release_cos_sin=True)


@functools.cache
def compiled():
    return torch.compile(eager, dynamic=False)


class Copy:
    """``y.copy_(x)`` of one (T, W) activation: read N + write N elements."""

    def __init__(self, width, dtype, device):
        self.x = torch.randn(T, width, generator=torch.Generator().manual_seed(0)).to(device, dtype)
        self.y = torch.empty_like(self.x)
        self.bytes = 2 * self.x.numel() * self.x.element_size()

    def __call__(self):
        self.y.copy_(self.x)


@functools.cache
def copy_of(width, dtype, device):
    return Copy(width, dtype, device)


def bytes_moved(width, dtype, passes):
    e = torch.empty((), dtype=dtype).element_size()
    n = T * width
    fwd, bwd = 2 * n * e + width * e + 12 * T, 3 * n * e + 2 * width * e + 12 * T
    return fwd if passes == "fwd" else fwd + bwd


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("passes", PASSES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_qk_norm_rope(benchmark, harness, device, quick, case, dtype, passes, impl):
    if quick and case == "k":
        pytest.skip("--quick")
    width, heads = CASES[case]
    dt = DTYPES[dtype]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(T, width, generator=g).to(device, dt).requires_grad_(passes != "fwd")
    w = (1 + 0.1 * torch.randn(width, generator=g)).to(device, dt).requires_grad_(passes != "fwd")
    pos = joint_positions(9, 1, 32, 32, device=device)  # 10 frames of 32 x 32 tokens
    assert pos.shape[0] == T
    fn = {"lavin_fast": lavin, "eager": eager, "compile": compiled()}[impl]
    if passes == "fwd":
        def step():
            with torch.no_grad():
                fn(x, w, pos, heads)
    else:
        grad = torch.randn(T, heads, width // heads, generator=g).to(device, dt)

        def step():
            torch.autograd.grad(fn(x, w, pos, heads), (x, w), grad)
    harness.run(benchmark, step, group=f"rope_{case} {dtype} {passes}", bytes_moved=bytes_moved(width, dt, passes),
                elements=T * width, paired_copy=copy_of(width, dt, device) if impl == "lavin_fast" else None,
                kind="op", case=f"rope_{case}", op="qk_norm_rope", dtype=dtype, passes=passes, impl=impl, T=T,
                D=width)
