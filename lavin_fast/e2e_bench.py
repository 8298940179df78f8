"""`lavin-fast bench`: end-to-end J-DiT step latency on a small configuration with the released head
layout (head_dim 72, 4:1 GQA).

Rows (median over repeats, after one warm-up call):
  CFG step, two passes (released):  reference eager | reference torch.compile (default, and with
                                    inductor's freezing on the CPU: oneDNN GEMMs) | lavin_fast
  CFG step, packed (one forward):   lavin_fast
  mixed batch (512/384/256-equivalent latents): lavin_fast padded to the largest | lavin_fast packed
"""

import json
import statistics
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from lavin_fast.machine import cpu_model, gpu_info
# lavin_fast.models (and the reference, which shares its token format) need the compiled extension,
# so they are imported where used: the CLI's parser imports this module, and `lavin-fast doctor` must
# start without the extension.

BENCH_CONFIG = dict(hidden_size=576, depth=2, num_heads=8, kv_group=4)


def _timed(fn, repeats):
    fn()  # warm-up (and compilation)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def _models(cfg, device, seed=0, dtype=torch.float32):
    from lavin_fast.models.jdit import LaVinDiT
    torch.manual_seed(seed)
    # The reference J-DiT is what this bench measures lavin_fast against (the "reference eager" and
    # torch.compile baselines): the one place product code may import lavin_fast.reference.
    from lavin_fast.reference.jdit import LaVinDiT as RefDiT
    ref = RefDiT(**cfg)
    with torch.no_grad():  # non-trivial modulation so nothing is skipped or cancels
        for name, p in ref.named_parameters():
            if "modulation" in name or "final_layer" in name:
                p.normal_(0, 0.02)
    fast = LaVinDiT(**cfg)
    fast.load_state_dict(ref.state_dict(), strict=True)
    return ref.to(device, dtype).eval(), fast.to(device, dtype).eval()


def device_info(device):
    info = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads()}
    info["cpu"] = cpu_model()
    info.update(gpu_info(device))
    return info


def fused_ops(fast, device, dtype):
    """The lavin_fast operators one forward of `fast` runs, in first-call order ("linear+..."): the
    fused kernels behind the lavin_fast rows, found by running the model rather than listed by hand."""
    seen = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.namespace == "lavin_fast" and func._opname not in seen:
                seen.append(func._opname)
            return func(*args, **(kwargs or {}))

    tokens = torch.randn(1, 1, 2, 2, 64, device=device, dtype=dtype)
    with torch.no_grad(), Record():
        fast(tokens, torch.full((1,), 0.5, device=device, dtype=dtype), tokens)
    return "+".join(seen)


def bench_cfg_step(ref, fast, pairs, grid, repeats, compile_ref, device, compile_fast=False, dtype=torch.float32):
    """One CFG step of one request: condition 2N+1 frames, unconditional 2, target 1."""
    from lavin_fast.models.jdit import JointLayout
    t_c = 2 * pairs + 1
    cond = torch.randn(1, t_c, grid, grid, 64, device=device, dtype=dtype)
    uncond = torch.cat([torch.zeros_like(cond[:, :1]), cond[:, -1:]], 1)
    x = torch.randn(1, 1, grid, grid, 64, device=device, dtype=dtype)
    t = torch.full((1,), 0.5, device=device, dtype=dtype)

    def two_passes(m):
        return lambda: (m(x, t, cond), m(x, t, uncond))

    layout = JointLayout.build([(t_c, 1, grid, grid), (2, 1, grid, grid)], device=device)
    c_tok = torch.cat([cond.reshape(-1, 64), uncond.reshape(-1, 64)])
    x_tok = torch.cat([x.reshape(-1, 64)] * 2)
    tt = t.expand(2)
    rows = {}
    with torch.no_grad():
        rows["reference eager, two passes"] = _timed(two_passes(ref), repeats)
        if compile_ref:
            rows["reference torch.compile, two passes"] = _timed(two_passes(torch.compile(ref)), repeats)
            if device.type == "cpu":  # freezing: inductor prepacks the weights for oneDNN (inference only)
                import torch._inductor.config as inductor_config
                torch._dynamo.reset()  # the default-config graph would otherwise be reused
                with inductor_config.patch(freezing=True):
                    rows["reference torch.compile+freezing, two passes"] = _timed(
                        two_passes(torch.compile(ref)), repeats)
                torch._dynamo.reset()
        rows["lavin_fast, two passes"] = _timed(two_passes(fast), repeats)
        rows["lavin_fast, packed CFG"] = _timed(lambda: fast.forward_tokens(c_tok, x_tok, tt, layout), repeats)
        if compile_fast:  # fuses what is left between the ops (SiLU * up, modulation chunks)
            fc = torch.compile(fast.forward_tokens)
            rows["lavin_fast torch.compile, packed CFG"] = _timed(lambda: fc(c_tok, x_tok, tt, layout), repeats)
    return rows, (t_c + 1) * grid * grid + 3 * grid * grid


def bench_mixed(fast, pairs, grids, repeats, device, dtype=torch.float32):
    """A batch of requests at different resolutions: padded to the largest vs packed."""
    t_c = 2 * pairs + 1
    conds = [torch.randn(t_c, g, g, 64, device=device, dtype=dtype) for g in grids]
    xs = [torch.randn(1, g, g, 64, device=device, dtype=dtype) for g in grids]
    t = torch.full((len(grids),), 0.5, device=device, dtype=dtype)
    big = max(grids)
    pad = lambda a: torch.nn.functional.pad(a, (0, 0, 0, big - a.shape[2], 0, big - a.shape[1]))  # noqa: E731
    cond_p, x_p = torch.stack([pad(c) for c in conds]), torch.stack([pad(x) for x in xs])
    with torch.no_grad():
        padded = _timed(lambda: fast(x_p, t, cond_p), repeats)
        packed = _timed(lambda: fast(xs, t, conds), repeats)
    tokens = [(t_c + 1) * g * g for g in grids]
    return padded, packed, 1 - sum(tokens) / (len(grids) * max(tokens))


def run(args):
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype_name = args.dtype or ("bf16" if device.type == "cuda" else "fp32")
    dtype = DTYPES[dtype_name]
    cfg = dict(BENCH_CONFIG, depth=args.depth, hidden_size=args.hidden)
    cfg["num_heads"] = cfg["hidden_size"] // 72
    ref, fast = _models(cfg, device, dtype=dtype)
    info = device_info(device)
    info["fused_ops"] = fused_ops(fast, device, dtype)
    lines = [f"lavin-fast bench: J-DiT {cfg} (head_dim 72), {dtype_name}, {device}",
             "  " + ", ".join(f"{k}={v}" for k, v in info.items())]
    rows, tokens = bench_cfg_step(ref, fast, args.pairs, args.grid, args.repeats, not args.no_compile, device,
                                  args.compile_lavin, dtype)
    lines.append(f"CFG step, {args.pairs} pairs, {args.grid}x{args.grid} tokens/frame ({tokens} tokens over both "
                 f"branches):")
    base = rows["reference eager, two passes"]
    for name, sec in rows.items():
        lines.append(f"  {name:46s} {sec * 1e3:9.1f} ms   {base / sec:5.2f}x vs reference eager")
    fast_step = rows["lavin_fast, packed CFG"]
    lines.append(f"  lavin_fast step (packed CFG) vs reference eager step: {base / fast_step:.2f}x; same work "
                 f"(two passes each): {base / rows['lavin_fast, two passes']:.2f}x")
    for label, key in (("compiled", "reference torch.compile, two passes"),
                       ("compiled+frozen", "reference torch.compile+freezing, two passes")):
        if key in rows:
            comp = rows[key]
            lines.append(f"  lavin_fast step vs {label} reference step: {comp / fast_step:.2f}x; same work: "
                         f"{comp / rows['lavin_fast, two passes']:.2f}x")
    lines.append(f"  packed CFG / two passes (lavin_fast): {fast_step / rows['lavin_fast, two passes']:.2f} "
                 "(< 1: packing is faster)")
    grids = [int(v) for v in args.mixed_grids.split(",")]
    padded, packed, pad_frac = bench_mixed(fast, args.mixed_pairs, grids, args.repeats, device, dtype)
    lines.append(f"mixed batch, token grids {grids} ({args.mixed_pairs} pair(s) each), padding {pad_frac:.0%}:")
    lines.append(f"  lavin_fast padded to the largest                {padded * 1e3:9.1f} ms")
    lines.append(f"  lavin_fast packed                               {packed * 1e3:9.1f} ms   {padded / packed:5.2f}x")
    print("\n".join(lines))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"config": cfg, "dtype": dtype_name, "info": info, "cfg_step_seconds": rows,
                       "mixed": {"grids": grids, "padded_seconds": padded, "packed_seconds": packed,
                                 "padding_fraction": pad_frac}}, f, indent=1, default=str)
    return 0


def add_bench_parser(sub):
    b = sub.add_parser("bench", help="end-to-end J-DiT step latency (reference vs lavin_fast, packing)")
    b.add_argument("--hidden", type=int, default=BENCH_CONFIG["hidden_size"], help="width (heads = hidden / 72)")
    b.add_argument("--depth", type=int, default=BENCH_CONFIG["depth"])
    b.add_argument("--pairs", type=int, default=4, help="in-context pairs of the CFG-step request")
    b.add_argument("--grid", type=int, default=16, help="tokens per side of a frame (16 = 256x256 images)")
    b.add_argument("--mixed-grids", default="32,24,16", help="token grids of the mixed batch (512/384/256 images)")
    b.add_argument("--mixed-pairs", type=int, default=1)
    b.add_argument("--repeats", type=int, default=5)
    b.add_argument("--no-compile", action="store_true", help="skip the torch.compile baseline (slow to compile)")
    b.add_argument("--compile-lavin", action="store_true", help="also time torch.compile of the lavin_fast model")
    b.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    b.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    b.add_argument("--dtype", choices=list(DTYPES),
                   help="parameters and inputs (default bf16 on CUDA, whose attention kernels take bf16/fp16 "
                        "only; fp32 on the CPU)")
    b.add_argument("--json", help="also write the numbers to this file")
    b.set_defaults(fn=run)
