"""Shared test helpers: tolerances, packed layouts, comparisons against the float64 reference."""

import contextlib
import os
import subprocess
import sys

import pytest
import torch

DTYPES = [torch.float32, torch.bfloat16, torch.float16]

# Error of our result vs the float64 reference of the same (rounded) inputs. Outputs are rounded to
# the dtype once (fp32 accumulation inside), so bf16 carries ~2^-9 relative error per element.
TOL = {
    torch.float32: dict(rtol=1e-5, atol=1e-5),
    torch.bfloat16: dict(rtol=1e-2, atol=1e-2),
    torch.float16: dict(rtol=2e-3, atol=2e-3),
}
# Gradients sum over rows (weight, scale, gate): compare relative to the gradient's own magnitude.
GRAD_TOL = {torch.float32: 2e-5, torch.bfloat16: 2e-2, torch.float16: 4e-3}


def cu_seqlens(lengths, device="cpu"):
    out = torch.zeros(len(lengths) + 1, dtype=torch.int32, device=device)
    out[1:] = torch.cumsum(torch.tensor(lengths, dtype=torch.int32), 0)
    return out


def randn(*shape, dtype=torch.float32, scale=1.0, offset=0.0):
    """Random values away from zero (never all zeros), rounded to dtype."""
    return (torch.randn(*shape, dtype=torch.float64) * scale + offset).to(dtype)


def f64(t):
    return None if t is None else t.detach().to(torch.float64)


def assert_close(got, ref, dtype, what=""):
    assert got.dtype == dtype, f"{what}: dtype {got.dtype} != {dtype}"
    assert torch.isfinite(got).all(), f"{what}: non-finite values (an unwritten, poisoned element?)"
    torch.testing.assert_close(got.to(torch.float64), ref.to(torch.float64), **TOL[dtype], msg=what)


def assert_grad_close(got, ref, dtype, what="", baseline=None):
    """Max error within GRAD_TOL of the gradient's magnitude, or (where the math cancels, e.g. D = 1,
    where grad_x ~ eps) within 2x the error of plain PyTorch autograd in the same dtype (`baseline`),
    the rule FlashAttention's tests use."""
    assert got is not None, f"{what}: no gradient"
    assert torch.isfinite(got).all(), f"{what}: non-finite gradient"
    err = (got.to(torch.float64) - ref).abs().max().item()
    bound = GRAD_TOL[dtype] * max(ref.abs().max().item(), 1e-3)
    if baseline is not None:
        bound = max(bound, 2 * (baseline.to(torch.float64) - ref).abs().max().item())
    assert err <= bound, f"{what}: max abs error {err:.3g} > {bound:.3g}"


# ---- backends: every op test runs on each ----
# "cpu": the CPU kernels; "simt": the CUDA kernels under the host SIMT emulator (lavin_fast.simt), once
# per schedule, with bit-identical results demanded; "cuda": the CUDA kernels on a GPU, where one exists.
BACKENDS = ["cpu", "simt"] + (["cuda"] if torch.cuda.is_available() else [])


def device_of(backend):
    return "cuda" if backend == "cuda" else "cpu"


def _bits(t):
    return t.detach().cpu().contiguous().view(torch.uint8)


def assert_bitwise_equal(a, b, what):
    leaves_a, spec_a = torch.utils._pytree.tree_flatten(a)
    leaves_b, spec_b = torch.utils._pytree.tree_flatten(b)
    assert spec_a == spec_b, f"{what}: different structure"
    for x, y in zip(leaves_a, leaves_b):
        if isinstance(x, torch.Tensor):
            assert x.dtype == y.dtype and x.shape == y.shape and torch.equal(_bits(x), _bits(y)), \
                f"{what}: results differ (a race between threads?)"


def host_backend(backend):
    """The context in which ops on CPU tensors use `backend` ("cpu" or "simt"): for tests whose inputs
    stay on the CPU (argument checks, opcheck)."""
    if backend == "simt":
        from lavin_fast import simt
        return simt.enabled()
    return contextlib.nullcontext()


def run_on(backend, fn):
    """fn() on the backend. For simt: once under each schedule of the emulator (forward, reverse,
    seeded random), asserting bit-identical results (tensors in any nesting), and returns the first."""
    if backend != "simt":
        return fn()
    from lavin_fast import simt
    results = []
    for schedule in simt.SCHEDULES:
        with simt.enabled(schedule, seed=12345):
            results.append(fn())
    for schedule, other in zip(simt.SCHEDULES[1:], results[1:]):
        assert_bitwise_equal(results[0], other, f"simt: schedule {schedule} vs forward")
    return results[0]


def with_backends(names, values=((),)):
    """Parameters (backend, value...) over BACKENDS x values. `names`: "backend", or e.g. "backend,dim"
    with values [1, 7, ...]."""
    params = []
    for backend in BACKENDS:
        for v in values:
            v = v if isinstance(v, tuple) else (v,)
            params.append(pytest.param(backend, *v, id="-".join([backend, *map(str, v)])))
    return pytest.mark.parametrize(names, params)


# ---- attention (tests/test_attention*.py): the backends its kernels exist on. attn-cuda adds "simt"
# here once the CUDA kernels run under the emulator.
ATTENTION_BACKENDS = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


# The start of a Python program (python -c) that runs as if lavin_fast._C had never been built.
WITHOUT_EXTENSION_PRELUDE = r"""
import importlib.abc, sys
class NoExtension(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "lavin_fast._C":
            raise ModuleNotFoundError("No module named 'lavin_fast._C'")
sys.meta_path.insert(0, NoExtension())
"""


def run_isa_variant(isa, check):
    """Runs tests.isa_checks.<check>() in a subprocess whose CPU kernels are the `isa` variant (DEFAULT,
    AVX2, AVX512: ATEN_CPU_CAPABILITY picks them once per process), outputs poisoned. The subprocess
    prints the variant it got (`_C.cpu_isa()`), then "ok" once the check passes. Skips variants this
    CPU or build lacks."""
    from lavin_fast import _C
    if isa != "DEFAULT" and _C.cpu_isa() == "DEFAULT":
        pytest.skip("this CPU (or build) has no vector variants")
    if isa == "AVX512" and _C.cpu_isa() != "AVX512":
        pytest.skip("this CPU has no AVX-512")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, ATEN_CPU_CAPABILITY=isa.lower(), PYTHONPATH=root)
    program = ("from lavin_fast import _C; from tests import isa_checks; _C.testing.set_poison_outputs(True); "
               f"print(_C.cpu_isa()); isa_checks.{check}(); print('ok')")
    r = subprocess.run([sys.executable, "-c", program], cwd=root, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split() == [isa, "ok"], r.stdout


def counting_backend(graphs):
    """A torch.compile backend: aot_eager (forward and backward traced with symbolic sizes), appending
    each graph it is given to `graphs` (one per compile, recompiles included)."""
    aot_eager = torch._dynamo.lookup_backend("aot_eager")

    def backend(gm, example_inputs):
        graphs.append(gm)
        return aot_eager(gm, example_inputs)
    return backend
