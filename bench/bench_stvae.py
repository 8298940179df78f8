"""ST-VAE encode/decode: time and peak memory of lavin_fast (one pass, streaming exact, streaming
per-chunk) vs the pure-PyTorch reference, for 17 and 65 frames.

Every case runs in a fresh subprocess, so its peak resident memory (VmHWM) is its own. "peak" is
VmHWM minus the resident size just before the timed call (model, input and libraries loaded), i.e.
the activations and outputs the call needed. One warm-up call first (oneDNN creates and JIT-compiles
its primitives on first use: seconds at the released widths), then the high-water mark is reset
(/proc/self/clear_refs) and one call is timed; --cold times the first call instead.

    python -m bench.bench_stvae                   # golden-config widths (32, 32, 32, 64) at 64x64
    python -m bench.bench_stvae --released --size 32   # released widths (128, 256, 256, 512)
"""

import argparse
import json
import os
import subprocess
import sys

import torch

from bench.timing import timed

SMALL = dict(block_out_channels=(32, 32, 32, 64), norm_num_groups=8, layers_per_block=1)
IMPLS = ("reference", "one-pass", "stream-exact", "stream-chunk")


def _status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def run_case(impl, op, frames, size, released, chunk, threads, cold=False):
    from lavin_fast.models.stvae import AutoencoderKLSTVAE
    from lavin_fast.reference import stvae as ref

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = {} if released else SMALL
    model = AutoencoderKLSTVAE(**cfg)
    params = model.state_dict()
    if op == "encode":
        x = torch.randn(1, 3, frames, size, size)
    else:
        x = torch.randn(1, 16, 1 + (frames - 1) // 4, size // 8, size // 8)
    kw = {} if impl == "one-pass" else dict(chunk_latents=chunk, norm=impl.split("-")[-1])
    def call():
        with torch.no_grad():
            if impl == "reference":
                return (ref.stvae_encode if op == "encode" else ref.stvae_decode)(params, x, **cfg)
            if op == "encode":
                return model.encode(x, **kw).mean
            return model.decode(x, **kw)

    if not cold:
        call()
        with open("/proc/self/clear_refs", "w") as f:  # VmHWM := VmRSS (Linux >= 4.0)
            f.write("5")
    base = _status("VmRSS")
    y, dt = timed(call)
    y = y[0] if isinstance(y, tuple) else y
    return dict(impl=impl, op=op, frames=frames, seconds=dt, peak_mb=(_status("VmHWM") - base) / 2**20,
                out_mb=y.numel() * y.element_size() / 2**20, out_shape=list(y.shape))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=64, help="frame height = width (pixels)")
    ap.add_argument("--frames", type=int, nargs="+", default=[17, 65])
    ap.add_argument("--released", action="store_true", help="released widths instead of the small config")
    ap.add_argument("--chunk", type=int, default=2, help="latent frames per streaming chunk")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--impls", nargs="+", default=list(IMPLS))
    ap.add_argument("--ops", nargs="+", default=["encode", "decode"])
    ap.add_argument("--glibc-default", action="store_true", help="keep glibc's dynamic mmap threshold")
    ap.add_argument("--cold", action="store_true", help="time the first call (no warm-up)")
    ap.add_argument("--case", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        impl, op, frames = args.case.split(",")
        print(json.dumps(run_case(impl, op, int(frames), args.size, args.released, args.chunk, args.threads,
                                  args.cold)))
        return
    widths = "released widths" if args.released else "widths (32, 32, 32, 64), 8 groups, 1 layer/block"
    print(f"ST-VAE, {widths}, {args.size}x{args.size}, chunk {args.chunk} latent frames, "
          f"{args.threads} thread(s), fp32 CPU, {'first call' if args.cold else 'after a warm-up call'}, "
          "peak = VmHWM - RSS before the call")
    # "work": peak minus the output, which any decoder holding its result must store (O(T)).
    print(f"{'op':7} {'impl':13} {'frames':>6} {'time s':>8} {'peak MiB':>8} {'out MiB':>7} {'work MiB':>8}")
    env = dict(os.environ, PYTHONPATH=os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # glibc raises its mmap threshold as large blocks are freed, after which freed activations stay
    # in the heap and the high-water mark depends on allocation history, not on what is live. A
    # fixed threshold (the same for every case) makes peaks comparable; --glibc-default to skip.
    if not args.glibc_default:
        env.setdefault("MALLOC_MMAP_THRESHOLD_", str(1 << 20))
    for op in args.ops:
        for impl in args.impls:
            for frames in args.frames:
                cmd = [sys.executable, "-m", "bench.bench_stvae", "--case", f"{impl},{op},{frames}",
                       "--size", str(args.size), "--chunk", str(args.chunk), "--threads", str(args.threads)]
                cmd += ["--released"] * args.released + ["--cold"] * args.cold
                out = subprocess.run(cmd, capture_output=True, text=True, env=env)
                if out.returncode:
                    print(out.stderr[-2000:])
                    continue
                r = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{op:7} {impl:13} {frames:6d} {r['seconds']:8.2f} {r['peak_mb']:8.1f} {r['out_mb']:7.1f} "
                      f"{r['peak_mb'] - r['out_mb']:8.1f}", flush=True)


if __name__ == "__main__":
    main()
