"""causal_conv3d vs replicate-pad + conv3d on the CPU at the ST-VAE's shapes (128 channels, 3x3x3,
9 / 17 / 33 frames, 128 x 128), fp32: time (pytest-benchmark, through the shared harness) and peak
memory (a fresh subprocess per case: the resident-set high-water mark VmHWM, reset after the inputs
are built, minus the RSS then; torch's CPU allocator is invisible to tracemalloc).

    python -m pytest bench/bench_conv.py --benchmark-only [--quick]      # times (+ peak memory in extra_info)
    python -m bench.bench_conv [--frames 9 17 33] [--layout ncdhw cl]    # the table of docs/conv.md
    python -m bench.bench_conv --backward [--frames ...]                 # forward + backward times
"""

import argparse
import json
import statistics
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from bench.timing import call_seconds

C, H, W, K = 128, 128, 128, 3
FRAMES = (9, 17, 33)
QUICK_FRAMES = (9,)
IMPLS = ("lavin_fast", "pad+conv3d")
LAYOUTS = ("ncdhw", "cl")


def inputs(t, layout, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, C, t, H, W, generator=g, dtype=dtype)
    if layout == "cl":
        x = x.contiguous(memory_format=torch.channels_last_3d)
    w = (torch.randn(C, C, K, K, K, generator=g) * (C * K ** 3) ** -0.5).to(dtype)
    b = torch.randn(C, generator=g).to(dtype)
    return x, w, b


def pad_conv3d(x, w, b):
    """What every causal VAE does: k_t - 1 copies of the first frame, then conv3d with spatial padding."""
    padded = torch.cat([x[:, :, :1]] * (K - 1) + [x], dim=2)
    return F.conv3d(padded, w, b, padding=(0, 1, 1))


def fn_of(impl):
    if impl == "lavin_fast":
        from lavin_fast.conv import causal_conv3d
        return lambda x, w, b: causal_conv3d(x, w, b, spatial_padding=1)
    return pad_conv3d


def padded_copy_bytes(t, dtype=torch.float32):
    return C * (t + K - 1) * H * W * torch.tensor([], dtype=dtype).element_size()


# ---- peak memory: one fresh process per case ----

_CHILD = r"""
import json, sys, torch
sys.path.insert(0, {repo!r})
from bench.bench_conv import fn_of, inputs
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
x, w, b = inputs({t}, {layout!r})
fn = fn_of({impl!r})
with torch.no_grad():
    fn(x, w, b)  # warm-up: oneDNN primitives, JIT code and library pages are not the op's memory
# Reset the high-water mark to the current RSS (Linux >= 4.0), so the transient peak of building
# the inputs (a channels-last conversion holds two copies of x) does not hide the op's.
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = status("VmRSS")
with torch.no_grad():
    y = fn(x, w, b)
print(json.dumps(dict(peak_increase=status("VmHWM") - before, output_bytes=y.numel() * y.element_size())))
"""


def peak_memory(impl, t, layout, threads=None):
    import os
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    # Every allocation of 64 KiB or more is its own mapping, returned to the OS when freed: the
    # warm-up call's temporaries do not stay resident in glibc's heap to be reused unseen.
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536")
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    out = subprocess.run([sys.executable, "-c", _CHILD.format(repo=repo, t=t, layout=layout, impl=impl)],
                         capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---- pytest-benchmark ----

def fwd_bwd_of(impl):
    """Forward and backward: gradients of x, weight and bias for a given output gradient."""
    fn = fn_of(impl)
    return lambda x, w, b, g: torch.autograd.grad(fn(x, w, b), (x, w, b), g)


def grad_inputs(t, layout):
    x, w, b = (v.requires_grad_() for v in inputs(t, layout))
    g = torch.randn(1, C, t, H, W, generator=torch.Generator().manual_seed(1))
    return x, w, b, g


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("t", FRAMES)
@pytest.mark.parametrize("passes", ["fwd", "fwd+bwd"])
def test_causal_conv3d(benchmark, harness, device, quick, passes, t, layout, impl):
    if device.type != "cpu":
        pytest.skip("the CPU comparison of the issue")
    if quick and t not in QUICK_FRAMES:
        pytest.skip("--quick")
    out_elems = C * t * H * W
    common = dict(elements=out_elems, kind="op", case=f"T={t}", op="causal_conv3d", dtype="fp32", passes=passes,
                  impl=impl, layout=layout, T=t)
    if passes == "fwd+bwd":
        args = grad_inputs(t, layout)
        fn = fwd_bwd_of(impl)
        harness.run(benchmark, lambda: fn(*args), group=f"causal_conv3d fwd+bwd fp32 T={t} {layout}",
                    bytes_moved=6 * args[0].numel() * 4, flops=3 * 2 * out_elems * C * K ** 3, **common)
        return
    x, w, b = inputs(t, layout)
    fn = fn_of(impl)
    mem = peak_memory(impl, t, layout)

    def step():
        with torch.no_grad():
            fn(x, w, b)

    harness.run(benchmark, step, group=f"causal_conv3d fp32 T={t} {layout}", bytes_moved=2 * x.numel() * 4,
                flops=2 * out_elems * C * K ** 3, peak_rss_increase_bytes=mem["peak_increase"],
                padded_copy_bytes=padded_copy_bytes(t), **common)


# ---- the table ----

def _interleaved_medians(fns, args, rounds, grad=False):
    """Median seconds of each fn, rounds interleaved (a, b, a, b, ...): on a shared machine the load
    drifts within minutes, and both sides should see the same drift."""
    times = {name: [] for name in fns}
    with torch.set_grad_enabled(grad):
        for fn in fns.values():
            fn(*args)  # warm-up (oneDNN primitive creation)
        for _ in range(rounds):
            for name, fn in fns.items():
                times[name].append(call_seconds(lambda: fn(*args)))
    return {name: statistics.median(v) for name, v in times.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, nargs="+", default=list(FRAMES))
    p.add_argument("--layout", nargs="+", default=list(LAYOUTS), choices=LAYOUTS)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--backward", action="store_true", help="time forward + backward (no memory columns)")
    a = p.parse_args(argv)
    if a.backward:
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; C={C}, {H}x{W}, k=3x3x3, fp32, "
              f"forward + backward (grads of x, weight, bias), median of {a.rounds} interleaved rounds")
        print("| T | layout | pad+conv3d ms | lavin_fast ms | speedup |")
        print("|---|---|---|---|---|")
        for t in a.frames:
            for layout in a.layout:
                fns = {i: fwd_bwd_of(i) for i in IMPLS}
                ms = {k: 1e3 * v for k, v in _interleaved_medians(fns, grad_inputs(t, layout), a.rounds, True).items()}
                print(f"| {t} | {layout} | {ms['pad+conv3d']:.0f} | {ms['lavin_fast']:.0f} | "
                      f"{ms['pad+conv3d'] / ms['lavin_fast']:.2f}x |", flush=True)
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; C={C}, {H}x{W}, k=3x3x3, fp32, "
          f"median of {a.rounds} interleaved rounds after a warm-up")
    print("| T | layout | pad+conv3d ms | lavin_fast ms | speedup | pad+conv3d peak MiB | lavin_fast peak MiB "
          "| saved MiB | padded copy MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
    for t in a.frames:
        for layout in a.layout:
            x, w, b = inputs(t, layout)
            ms = {k: 1e3 * v for k, v in _interleaved_medians({i: fn_of(i) for i in IMPLS}, (x, w, b), a.rounds).items()}
            mem = {impl: peak_memory(impl, t, layout)["peak_increase"] / 2 ** 20 for impl in IMPLS}
            ref_ms, ours_ms = ms["pad+conv3d"], ms["lavin_fast"]
            print(f"| {t} | {layout} | {ref_ms:.0f} | {ours_ms:.0f} | {ref_ms / ours_ms:.2f}x | "
                  f"{mem['pad+conv3d']:.0f} | {mem['lavin_fast']:.0f} | {mem['pad+conv3d'] - mem['lavin_fast']:.0f} | "
                  f"{padded_copy_bytes(t) / 2 ** 20:.0f} |", flush=True)


if __name__ == "__main__":
    main()
