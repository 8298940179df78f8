"""Runs the benchmark suite and prints one table: lavin_fast vs eager vs torch.compile, bandwidth as a
fraction of a plain copy measured in the same run, and which of the issue's forward targets are met.

    python -m bench.report [--quick] [--device cuda] [--json PATH] [other pytest args: --threads 1, -k bf16]
    python -m bench.report --from-json PATH      # print the table of an earlier run

Standard library only, so it also runs as ``python bench/report.py``. It never fails on a missed
target: the targets are reported, not asserted.
"""

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.report_attention import section as attention_section  # noqa: E402
from bench.report_linear import section as linear_section  # noqa: E402

# The forward targets on this machine.
TARGET_VS_COMPILE = 2.0
TARGET_VS_EAGER = 5.0
TARGET_COPY_FRACTION = 0.5


def run_suite(json_path, device, quick, pytest_args):
    cmd = [sys.executable, "-m", "pytest", "bench/", "--benchmark-only", "--benchmark-quiet", "-q",
           f"--benchmark-json={json_path}", f"--device={device}", *(["--quick"] if quick else []),
           *pytest_args]
    print("$ " + shlex.join(cmd), file=sys.stderr, flush=True)
    return subprocess.call(cmd, cwd=REPO)


def _ms(seconds):
    return seconds * 1e3


def _fmt_ms(v):
    """Three significant digits or more: 0.0312 on a GPU, 10.6 or 1408.1 on this CPU."""
    return "-" if v is None else format(v, ".3f" if v < 1 else ".2f" if v < 100 else ".1f")


def _fmt(v, spec, missing="-"):
    return missing if v is None else format(v, spec)


def _ratio(a, b):
    return None if a is None or b is None else a / b


def _gbps(b):
    return b["extra_info"]["bytes"] / b["stats"]["median"] / 1e9


def machine_header(data, benchmarks):
    m, c = data["machine_info"], data.get("commit_info", {})
    lines = [
        f"machine: {m.get('cpu_model') or m.get('cpu', {}).get('brand_raw')}, {m.get('cpu_count')} CPUs, "
        f"torch {m.get('torch_version')} ({m.get('torch_threads')} threads), "
        f"lavin_fast {m.get('lavin_fast_version')} CPU ISA {m.get('lavin_fast_cpu_isa')}, "
        f"CUDA kernels {'yes' if m.get('lavin_fast_cuda_compiled') else 'no'}",
        f"device: {m.get('bench_device')}{' (quick)' if m.get('bench_quick') else ''}; "
        f"commit {str(c.get('id'))[:10]} ({c.get('branch')}{', dirty' if c.get('dirty') else ''}); "
        f"{data.get('datetime', '')[:19]}",
    ]
    if m.get("gpu"):
        gb = m.get("gpu_memory_total_bytes")
        lines.append(f"GPU: {m['gpu']}, driver {m.get('gpu_driver', '?')}, "
                     f"{_fmt(gb and gb / 2**30, '.0f', '?')} GiB, SM clock {m.get('gpu_sm_clock_mhz', '?')}"
                     f"/{m.get('gpu_sm_clock_max_mhz', '?')} MHz, "
                     f"memory clock {m.get('gpu_mem_clock_mhz', '?')}"
                     f"/{m.get('gpu_mem_clock_max_mhz', '?')} MHz (current/max at the end)")
        sm = [b["extra_info"]["sm_clock_mhz"] for b in benchmarks if "sm_clock_mhz" in b["extra_info"]]
        if sm:
            lines.append(f"SM clock after each benchmark: {min(sm)}-{max(sm)} MHz")
    elif m.get("gpu_note"):
        lines.append(f"GPU: none ({m['gpu_note']})")
    return lines


def copy_baselines(benchmarks):
    """{dtype: {"copy_": GB/s, "clone": GB/s}} and one header line per dtype."""
    bw, lines = {}, []
    for b in benchmarks:
        e = b["extra_info"]
        if e.get("kind") == "copy":
            bw.setdefault(e["dtype"], {})[e["impl"]] = _gbps(b)
    for dtype in sorted(bw):
        parts = []
        for kind in ("copy_", "clone"):
            m = next((b for b in benchmarks if b["extra_info"].get("kind") == "copy"
                      and b["extra_info"]["dtype"] == dtype and b["extra_info"]["impl"] == kind), None)
            if m:
                st = m["stats"]
                parts.append(f"{kind} {_ms(st['median']):.2f} ms (IQR {100 * st['iqr'] / st['median']:.0f}%) "
                             f"= {bw[dtype][kind]:.1f} GB/s")
        lines.append(f"copy {dtype} (read + write of one {m['extra_info']['T']}x{m['extra_info']['D']} "
                     f"tensor): " + ", ".join(parts))
    return bw, lines


def paired_copy_gbps(b):
    """Bandwidth of the copy_ timed just before and after this benchmark (bench/timing.py), or None."""
    e = b["extra_info"]
    return e["paired_copy_bytes"] / e["paired_copy_median_s"] / 1e9 if "paired_copy_median_s" in e else None


def op_rows(benchmarks, copy_bw):
    """One row per (case, dtype, pass) in the order the suite ran them."""
    groups = {}
    for b in benchmarks:
        e = b["extra_info"]
        if e.get("kind") == "op":
            groups.setdefault((e["case"], e["dtype"], e["passes"]), {})[e["impl"]] = b
    rows, met = [], []
    for (case, dtype, passes), impls in groups.items():
        med = {k: _ms(b["stats"]["median"]) for k, b in impls.items()}
        lf = impls.get("lavin_fast")
        gbps = _gbps(lf) if lf else None
        vs_eager = _ratio(med.get("eager"), med.get("lavin_fast"))
        vs_compile = _ratio(med.get("compile"), med.get("lavin_fast"))
        # The copy timed under the same load when there is one, else the run's copy_ baseline (*).
        copy, mark = (paired_copy_gbps(lf) if lf else None), ""
        if copy is None and lf:
            copy, mark = copy_bw.get(dtype, {}).get("copy_"), "*"
        f_copy = _ratio(gbps, copy)
        f_clone = _ratio(gbps, copy_bw.get(dtype, {}).get("clone"))
        targets = ""
        if passes == "fwd":
            checks = [(vs_compile, TARGET_VS_COMPILE), (vs_eager, TARGET_VS_EAGER),
                      (f_copy, TARGET_COPY_FRACTION)]
            targets = " ".join("-" if v is None else ("yes" if v >= t else "NO") for v, t in checks)
            met.append(all(v is not None and v >= t for v, t in checks))
        iqr = lf and 100 * lf["stats"]["iqr"] / lf["stats"]["median"]
        rows.append([case, dtype, passes, _fmt_ms(med.get("lavin_fast")), _fmt(iqr, ".0f"),
                     _fmt_ms(med.get("eager")), _fmt_ms(med.get("compile")),
                     _fmt(vs_eager, ".1f"), _fmt(vs_compile, ".1f"), _fmt(gbps, ".1f"),
                     _fmt(copy, ".1f") + mark, _fmt(f_copy and 100 * f_copy, ".0f"),
                     _fmt(f_clone and 100 * f_clone, ".0f"), targets])
    return rows, met


HEADER = ["op", "dtype", "pass", "lavin ms", "IQR%", "eager ms", "compile ms", "x eager", "x compile",
          "GB/s", "copy GB/s", "%copy_", "%clone", "fwd targets C E B"]


def table(rows):
    widths = [max(len(str(r[i])) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    left = {0, 1, 2, len(HEADER) - 1}  # text columns; numbers align right

    def line(r):
        return "  ".join(str(v).ljust(w) if i in left else str(v).rjust(w)
                         for i, (v, w) in enumerate(zip(r, widths))).rstrip()

    return [line(HEADER), "  ".join("-" * w for w in widths), *map(line, rows)]


def report(data):
    benchmarks = data["benchmarks"]
    copy_bw, copy_lines = copy_baselines(benchmarks)
    rows, met = op_rows(benchmarks, copy_bw)
    out = ["lavin_fast benchmarks (RMSNorm family at LaVin-DiT shapes; medians; all ratios from this run)",
           *machine_header(data, benchmarks), *copy_lines, "", *table(rows), "",
           "lavin/eager/compile ms: medians; IQR%: interquartile range of the lavin_fast rounds / median;",
           "x eager, x compile: speedup of lavin_fast; GB/s: bytes that must move (bench/norm_cases.py) / "
           "lavin_fast median;",
           "copy GB/s: copy_ into a preallocated tensor, timed just before and after the lavin_fast rounds",
           "  (same load; * = the run's baseline above);",
           "%copy_, %clone: GB/s as a percentage of that copy_, and of the run's clone (allocation + copy);",
           f"fwd targets: C >= {TARGET_VS_COMPILE:g}x torch.compile, E >= {TARGET_VS_EAGER:g}x eager, "
           f"B >= {100 * TARGET_COPY_FRACTION:.0f}% of copy_ bandwidth.",
           f"forward rows meeting all three targets: {sum(met)}/{len(met)}"]
    out += attention_section(benchmarks)
    out += linear_section(benchmarks)
    return "\n".join(out)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer cases and rounds")
    p.add_argument("--device", default=os.environ.get("LAVIN_FAST_BENCH_DEVICE", "cpu"),
                   help='"cpu" (default) or "cuda[:i]"')
    p.add_argument("--json", type=Path, help="where to save pytest-benchmark's JSON "
                   "(default .benchmarks/norms-<device>-<time>.json)")
    p.add_argument("--from-json", type=Path, help="print the table of an existing JSON; run nothing")
    args, pytest_args = p.parse_known_args(argv)

    rc = 0
    path = args.from_json
    if path is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = args.json or REPO / ".benchmarks" / f"norms-{args.device.replace(':', '')}-{stamp}.json"
        path = path.resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        rc = run_suite(path, args.device, args.quick, pytest_args)
        if not path.exists():
            print(f"pytest exited with {rc} and wrote no {path}", file=sys.stderr)
            return rc or 1
    with open(path) as f:
        print(report(json.load(f)))
    print(f"\nJSON: {path}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
