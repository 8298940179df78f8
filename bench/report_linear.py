"""The linear section of the benchmark report (bench/bench_linear.py): GFLOP/s of lavin_fast.linear,
F.linear and torch.compile, and lavin_fast's speedup over the faster of the two. Standard library only."""


def section(benchmarks):
    rows = {}
    for b in benchmarks:
        e = b["extra_info"]
        if e.get("kind") == "linear":
            rows.setdefault((e["case"], e["passes"]), {})[e["impl"]] = b
    if not rows:
        return []
    rate = lambda b: b["extra_info"]["flops"] / b["stats"]["median"] / 1e9  # noqa: E731
    out = ["", "Linear, fp32 (GFLOP/s = 2*M*N*K, fwd+bwd 3x that)"]
    for (case, passes), impls in rows.items():
        cells = [f"{impl} {rate(b):.0f}" for impl, b in impls.items()]
        peers = [b["stats"]["median"] for impl, b in impls.items() if impl != "lavin_fast"]
        lf = impls.get("lavin_fast")
        ratio = f"  lavin_fast {min(peers) / lf['stats']['median']:.2f}x best peer" if lf and peers else ""
        out.append(f"  {case} {passes}: " + ", ".join(cells) + " GFLOP/s" + ratio)
    return out
