"""The attention section of the benchmark report (bench/bench_attention.py): GFLOP/s of lavin_fast
and its peers, the fraction of the run's fp32 matmul rate, speedups over the best peer, and the
tile-sparsity sweep. Standard library only."""

TARGET_FWD_VS_PEER = 3.0
TARGET_FWDBWD_VS_PEER = 2.0
TARGET_MATMUL_FRACTION = 0.35
PEERS = ("flex", "sdpa_loop", "sdpa_dense")


def _gflops(b):
    return b["extra_info"]["flops"] / b["stats"]["median"] / 1e9


def _fmt(v, spec):
    return "-" if v is None else format(v, spec)


def section(benchmarks):
    mm = [b for b in benchmarks if b["extra_info"].get("kind") == "attention_matmul"]
    ops = [b for b in benchmarks if b["extra_info"].get("kind") == "attention"]
    sweep = [b for b in benchmarks if b["extra_info"].get("kind") == "attention_sparsity"]
    if not (mm or ops or sweep):
        return []
    # %matmul is against the fastest fp32 GEMM of the run (oneDNN; MKL's torch.mm is listed too).
    mm_rate = max(map(_gflops, mm)) if mm else None
    out = ["", "Varlen attention, fp32 (GFLOP/s = 4*H*D*visible pairs / median, fwd+bwd 3.5x that)",
           "fp32 matmul 2048^3 in this run: " + ", ".join(
               f"{b['extra_info']['impl']} {_gflops(b):.1f}" for b in mm) + " GFLOP/s"]
    groups = {}
    for b in ops:
        e = b["extra_info"]
        groups.setdefault((e["case"], e["passes"]), {})[e["impl"]] = b
    header = ["case", "pass", "lavin ms", "GFLOP/s", "%matmul", "flex ms", "sdpa_loop ms",
              "sdpa_dense ms", "x best peer", "target"]
    rows = []
    for (case, passes), impls in groups.items():
        lf = impls.get("lavin_fast")
        ms = {k: b["stats"]["median"] * 1e3 for k, b in impls.items()}
        rate = _gflops(lf) if lf else None
        frac = rate / mm_rate if rate and mm_rate else None
        peers = [ms[p] for p in PEERS if p in ms]
        speedup = min(peers) / ms["lavin_fast"] if peers and lf else None
        if passes == "fwd":
            ok = speedup is not None and speedup >= TARGET_FWD_VS_PEER and frac is not None and \
                frac >= TARGET_MATMUL_FRACTION
            target = f">= {TARGET_FWD_VS_PEER:g}x & {100 * TARGET_MATMUL_FRACTION:.0f}%: " + ("yes" if ok else "NO")
        else:
            ok = speedup is not None and speedup >= TARGET_FWDBWD_VS_PEER
            target = f">= {TARGET_FWDBWD_VS_PEER:g}x: " + ("yes" if ok else "NO")
        rows.append([case, passes, _fmt(ms.get("lavin_fast"), ".1f"), _fmt(rate, ".1f"),
                     _fmt(frac and 100 * frac, ".0f"), _fmt(ms.get("flex"), ".1f"),
                     _fmt(ms.get("sdpa_loop"), ".1f"), _fmt(ms.get("sdpa_dense"), ".1f"),
                     _fmt(speedup, ".1f"), target])
    if rows:
        widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
        line = lambda r: "  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip()
        out += [line(header), "  ".join("-" * w for w in widths), *map(line, rows)]
    if sweep:
        out.append("tile sparsity (lavin 10x256, random 64x64 tile masks, forward): " + ", ".join(
            f"{100 * b['extra_info']['density']:.0f}% tiles {b['stats']['median'] * 1e3:.1f} ms"
            for b in sorted(sweep, key=lambda b: -b["extra_info"]["density"])))
    out.append("flex: FlexAttention has no CPU backward in torch 2.14, so fwd+bwd peers are the SDPA ones.")
    return out


if __name__ == "__main__":
    # python -m bench.report_attention PATH: the attention section of a pytest-benchmark JSON, e.g. of
    # python -m pytest bench/bench_attention.py --benchmark-only --benchmark-json=PATH
    import json
    import sys

    with open(sys.argv[1]) as f:
        print("\n".join(section(json.load(f)["benchmarks"])))
