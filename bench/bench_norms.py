"""RMSNorm family at the released model's shapes: lavin_fast vs the eager reference vs torch.compile of
the reference, forward and forward+backward, fp32 and bf16; plus the copy baselines whose bandwidth
the report divides by. Ratios are only meaningful between benchmarks of the same run."""

import functools

import pytest
import torch

from bench.norm_cases import CASES, D, QUICK_CASES, T
from lavin_fast.reference import norms as reference

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
PASSES = ("fwd", "fwd+bwd")
IMPLS = ("lavin_fast", "eager", "compile")


@functools.cache
def compiled(op):
    """One torch.compile wrapper per reference function. dynamic=False: a graph specialised to each
    (shape, dtype, requires_grad) is the strongest baseline, and dynamo caches one per combination
    (compiled on the warm-up call, outside the timed region)."""
    return torch.compile(getattr(reference, op), dynamic=False)


def _step(fn, args, kwargs, diff, passes, device):
    if passes == "fwd":
        return lambda: fn(*args, **kwargs)
    grad_out = torch.randn(T, D, generator=torch.Generator().manual_seed(1)).to(device, diff[0].dtype)

    def fwd_bwd():
        # autograd.grad rather than .backward(): no accumulation into .grad, which would add a
        # read-modify-write of every gradient from the second round on.
        torch.autograd.grad(fn(*args, **kwargs), diff, grad_out)

    return fwd_bwd


class Copy:
    """``y.copy_(x)`` over one (T, D) activation into a preallocated tensor: what the memory system
    sustains. Bytes: read N + write N elements."""

    def __init__(self, dtype, device):
        self.x = torch.randn(T, D, generator=torch.Generator().manual_seed(0)).to(device, dtype)
        self.y = torch.empty_like(self.x)
        self.bytes = 2 * self.x.numel() * self.x.element_size()

    def __call__(self):
        self.y.copy_(self.x)


@functools.cache
def copy_of(dtype, device):
    return Copy(dtype, device)


@pytest.mark.parametrize("kind", ("copy_", "clone"))
@pytest.mark.parametrize("dtype", DTYPES)
def test_copy(benchmark, harness, device, dtype, kind):
    """Bandwidth baselines of the whole run: copy_ (see Copy) and clone, allocation + copy, what an
    op returning a fresh tensor pays (on this machine mostly first-touch page faults)."""
    copy = copy_of(DTYPES[dtype], device)
    fn = copy if kind == "copy_" else copy.x.clone
    harness.run(benchmark, fn, group=f"copy {dtype}", bytes_moved=copy.bytes,
                elements=copy.x.numel(), kind="copy", case=kind, dtype=dtype, passes="fwd",
                impl=kind, T=T, D=D)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("passes", PASSES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_norm(benchmark, harness, device, quick, case, dtype, passes, impl):
    if quick and case.name not in QUICK_CASES:
        pytest.skip("--quick")
    fast, ref = case.functions()
    fn = {"lavin_fast": fast, "eager": ref, "compile": compiled(case.op)}[impl]
    args, kwargs, diff = case.inputs(DTYPES[dtype], device, requires_grad=passes != "fwd")
    if impl == "lavin_fast" and device.type != "cpu" and not _has_kernel(fast, args, kwargs):
        pytest.skip(f"lavin_fast has no {device.type} kernel in this build")
    harness.run(benchmark, _step(fn, args, kwargs, diff, passes, device),
                group=f"{case.name} {dtype} {passes}",
                bytes_moved=case.bytes_moved(DTYPES[dtype], passes), elements=T * D,
                paired_copy=copy_of(DTYPES[dtype], device) if impl == "lavin_fast" else None,
                kind="op", case=case.name, op=case.op, dtype=dtype, passes=passes, impl=impl,
                T=T, D=D, segments=case.S)


def _has_kernel(fn, args, kwargs):
    """A build without the CUDA kernels raises NotImplementedError for CUDA tensors."""
    try:
        with torch.no_grad():
            fn(*args, **kwargs)
    except NotImplementedError:
        return False
    return True
