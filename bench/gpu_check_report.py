"""The report of the GPU acceptance run (scripts/gpu-check, bench/gpu_check.py): the device's datasheet
peaks, benchmark rows with TFLOP/s or GB/s and the fraction of that peak, test outcomes with every
failure's test id, phases; written as one JSON and one markdown file.

Standard library only: the dry run, CI and the tests use it without torch or a GPU.
"""

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

SCHEMA = "lavin_fast.gpu_check/1"
JSON_NAME = "gpu_check.json"
MARKDOWN_NAME = "gpu_check.md"


# ---- device peaks ----

@dataclass(frozen=True)
class Peak:
    name: str
    bf16_tflops: float  # dense tensor-core bf16 / fp16 (no 2:4 sparsity)
    fp32_tflops: float  # plain fp32 FMA; torch's matmuls default to it (TF32 off)
    hbm_gbps: float  # memory bandwidth, GB/s (10^9 bytes)
    source: str


# Datasheet numbers (dense: the datasheets print the 2:4-sparsity rate, twice these).
_H100 = "NVIDIA H100 Tensor Core GPU datasheet"
_H200 = "NVIDIA H200 Tensor Core GPU datasheet"
_A100 = "NVIDIA A100 Tensor Core GPU datasheet"
PEAKS = {
    "H100 SXM": Peak("H100 SXM", 989.4, 67.0, 3350.0, _H100),
    "H100 PCIe": Peak("H100 PCIe", 756.0, 51.0, 2000.0, _H100),
    "H200 SXM": Peak("H200 SXM", 989.4, 67.0, 4800.0, _H200),  # the H100's compute, faster memory
    "A100 SXM 80GB": Peak("A100 SXM 80GB", 312.0, 19.5, 2039.0, _A100),
    "A100 SXM 40GB": Peak("A100 SXM 40GB", 312.0, 19.5, 1555.0, _A100),
    "A100 PCIe 80GB": Peak("A100 PCIe 80GB", 312.0, 19.5, 1935.0, _A100),
    "A100 PCIe 40GB": Peak("A100 PCIe 40GB", 312.0, 19.5, 1555.0, _A100),
}


def peak_key(device_name):
    """The PEAKS key of an NVML device name ("NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB", ...), or
    None: NVL and other variants with other clocks or memory are left unknown rather than guessed."""
    if not device_name:
        return None
    words = set(re.findall(r"[A-Z0-9]+", device_name.upper()))
    sxm = any(w.startswith("SXM") for w in words)
    if "NVL" in words:
        return None
    if "H200" in words:  # whole words: "GH200" (Grace Hopper) is another part
        return "H200 SXM"
    if "H100" in words:
        if "PCIE" in words:
            return "H100 PCIe"
        return "H100 SXM" if sxm or "HBM3" in words else None
    if "A100" in words:
        size = "80GB" if "80GB" in words else "40GB" if "40GB" in words else None
        form = "SXM" if sxm else "PCIe" if "PCIE" in words else None
        return f"A100 {form} {size}" if size and form else None
    return None


def peak_for(device_name):
    key = peak_key(device_name)
    return PEAKS[key] if key else None


def compute_peak(peak, dtype):
    """TFLOP/s ceiling of a dtype ("bf16", "fp16", "fp32"), or None."""
    if peak is None:
        return None
    return {"bf16": peak.bf16_tflops, "fp16": peak.bf16_tflops, "fp32": peak.fp32_tflops}.get(dtype)


# ---- benchmark rows ----

def _suite(fullname):
    """"bench/bench_norms.py::test_norm[...]" -> "norms"."""
    stem = Path(str(fullname).split("::")[0]).stem
    return stem.removeprefix("bench_")


def benchmark_rows(benchmarks, peak):
    """pytest-benchmark rows (its JSON's "benchmarks", or the same dicts streamed one by one) -> report
    rows: median time; TFLOP/s against the dtype's compute peak when the benchmark counts FLOPs
    (extra_info["flops"]: matrix work), else GB/s against the memory bandwidth (extra_info["bytes"]:
    bytes that must move); and lavin_fast's speedup over the fastest other implementation of its group."""
    rows = []
    for b in benchmarks:
        e, st = b.get("extra_info", {}), b["stats"]
        median = st["median"]
        dtype = e.get("dtype")
        rate = unit = ceiling = None
        if e.get("flops"):
            rate, unit, ceiling = e["flops"] / median / 1e12, "TFLOP/s", compute_peak(peak, dtype)
        elif e.get("bytes"):
            rate, unit, ceiling = e["bytes"] / median / 1e9, "GB/s", peak.hbm_gbps if peak else None
        rows.append({
            "suite": _suite(b.get("fullname", b.get("name", ""))),
            "name": b.get("name"),
            "group": b.get("group"),
            "case": e.get("case"),
            "impl": e.get("impl"),
            "dtype": dtype,
            "passes": e.get("passes"),
            "kind": e.get("kind"),
            "median_ms": median * 1e3,
            "iqr_pct": 100 * st["iqr"] / median if st.get("iqr") is not None else None,
            "rounds": st.get("rounds"),
            "rate": rate,
            "unit": unit,
            "peak": ceiling,
            "fraction_of_peak": rate / ceiling if rate is not None and ceiling else None,
            "sm_clock_mhz": e.get("sm_clock_mhz"),
            "note": e.get("note"),
        })
    _add_peer_ratios(rows)
    return rows


def _add_peer_ratios(rows):
    groups = {}
    for r in rows:
        if r["kind"] != "copy" and r["group"] is not None:
            groups.setdefault(r["group"], []).append(r)
    for members in groups.values():
        for r in members:
            peers = [p for p in members if p["impl"] != r["impl"]]
            if r["impl"] == "lavin_fast" and peers:
                best = min(peers, key=lambda p: p["median_ms"])
                r["best_peer"], r["x_best_peer"] = best["impl"], best["median_ms"] / r["median_ms"]


# ---- test outcomes (the JSON lines bench/gpu_check_plugin.py streams) ----

def read_stream(path):
    """The JSON lines of a stream file; a torn last line (the process was killed mid-write) is dropped."""
    events = []
    try:
        text = Path(path).read_text()
    except OSError:
        return events
    for line in text.splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return events


def failure_message(longrepr, limit=3):
    """The assertion lines ("E   ...") of a pytest failure, or its last non-empty line."""
    lines = [ln for ln in str(longrepr or "").splitlines() if ln.strip()]
    errors = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    picked = errors[:limit] if errors else lines[-1:]
    return " / ".join(picked)[:500]


def test_outcomes(events, phase, timed_out=False):
    """Counts and failures of one pytest run from its streamed events. A test that started and never
    reported (the phase was killed) is a failure "did not finish"."""
    outcome, failures, started = {}, [], []
    for ev in events:
        if ev.get("event") == "start":
            started.append(ev["nodeid"])
        elif ev.get("event") == "report":
            nid, when, out = ev["nodeid"], ev["when"], ev["outcome"]
            if out == "failed":
                # setup / teardown / collect: errors; "call" and xdist's crashed worker ("???"): failures
                kind = "error" if when in ("setup", "teardown", "collect") else "failed"
                outcome[nid] = kind
                failures.append({"id": nid, "phase": phase, "when": when,
                                 "message": failure_message(ev.get("longrepr")),
                                 "details": str(ev.get("longrepr") or "")[-4000:]})
            elif out == "skipped" and nid not in outcome:
                outcome[nid] = "skipped"
            elif out == "passed" and when == "call" and nid not in outcome:
                outcome[nid] = "passed"
    for nid in started:
        if nid not in outcome:
            outcome[nid] = "unfinished"
            failures.append({"id": nid, "phase": phase, "when": "call",
                             "message": "did not finish" + (" (the phase timed out)" if timed_out else ""),
                             "details": ""})
    counts = {k: sum(v == k for v in outcome.values())
              for k in ("passed", "failed", "error", "skipped", "unfinished")}
    return counts, failures


def skipped_benchmarks(events):
    """(test id, reason) of every benchmark that skipped: the peers this machine could not run (the cases
    left out by the suites' --quick sizing are a choice, not a gap, and are not listed)."""
    out = []
    for ev in events:
        if ev.get("event") == "report" and ev.get("outcome") == "skipped":
            reason = ev.get("skip_reason") or failure_message(ev.get("longrepr"))
            if not reason.startswith("--quick"):
                out.append({"id": ev["nodeid"], "reason": reason})
    return out


# ---- J-DiT step (lavin-fast bench --json) ----

def jdit_rows(data):
    rows = []
    if not data:
        return rows
    steps = data.get("cfg_step_seconds", {})
    base = steps.get("reference eager, two passes")
    for name, sec in steps.items():
        rows.append({"name": name, "ms": sec * 1e3, "x_reference_eager": base / sec if base else None})
    mixed = data.get("mixed")
    if mixed:
        rows.append({"name": f"mixed batch {mixed['grids']}, lavin_fast padded", "ms": mixed["padded_seconds"] * 1e3,
                     "x_reference_eager": None})
        rows.append({"name": f"mixed batch {mixed['grids']}, lavin_fast packed", "ms": mixed["packed_seconds"] * 1e3,
                     "x_reference_eager": None})
    return rows


# ---- the report ----

def peak_dict(peak):
    return asdict(peak) if peak else None


def write(report, out_dir):
    """Writes gpu_check.json and gpu_check.md into out_dir; returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    js, md = out_dir / JSON_NAME, out_dir / MARKDOWN_NAME
    js.write_text(json.dumps(report, indent=1, default=str) + "\n")
    md.write_text(markdown(report))
    return js, md


def _cell(v, spec=None):
    if v is None or v == "":
        return "-"
    text = format(v, spec) if spec else str(v)
    return text.replace("|", "\\|").replace("\n", " ")


def _table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def markdown(r):
    dev, peak = r.get("device") or {}, r.get("peak")
    verdict = "PASS" if r.get("ok") else "FAIL"
    lines = ["# lavin_fast GPU check", ""]
    if r.get("dry_run"):
        lines += [f"**DRY RUN** ({r.get('dry_run_reason')}): every number below is synthetic; it only "
                  "exercises the report path.", ""]
    lines += [f"**Result: {verdict}**. Started {r.get('started')}, {r.get('wall_s', 0):.0f} s of a "
              f"{r.get('budget_s', 0):.0f} s budget; commit {r.get('commit') or '?'}.", "",
              "## Device", ""]
    mem = dev.get("gpu_memory_total_bytes")
    dev_rows = [
        ("GPU (NVML)", dev.get("gpu") or dev.get("name")),
        ("driver", dev.get("gpu_driver")),
        ("memory", f"{mem / 2**30:.1f} GiB" if mem else None),
        ("SM clock now / max (MHz)", f"{dev.get('gpu_sm_clock_mhz', '?')} / {dev.get('gpu_sm_clock_max_mhz', '?')}"),
        ("memory clock now / max (MHz)",
         f"{dev.get('gpu_mem_clock_mhz', '?')} / {dev.get('gpu_mem_clock_max_mhz', '?')}"),
        ("compute capability", dev.get("capability")),
        ("multiprocessors", dev.get("multiprocessors")),
        ("torch / CUDA", f"{dev.get('torch')} / {dev.get('torch_cuda')}"),
        ("NVML note", dev.get("gpu_note")),
        ("peak used", f"{peak['name']}: bf16 {peak['bf16_tflops']:g} TFLOP/s dense, fp32 {peak['fp32_tflops']:g} "
                      f"TFLOP/s, memory {peak['hbm_gbps']:g} GB/s ({peak['source']})" if peak
         else "unknown peak (no datasheet entry for this device): no fractions of peak"),
    ]
    clocks = [b["sm_clock_mhz"] for b in r.get("benchmarks", []) if b.get("sm_clock_mhz")]
    if clocks:
        dev_rows.append(("SM clock after each benchmark (MHz)", f"{min(clocks)}-{max(clocks)}"))
    lines += _table(["", ""], [[k, _cell(v)] for k, v in dev_rows if v is not None])
    lines += ["", "## Phases", ""]
    lines += _table(["phase", "status", "seconds", "budget s", "note"],
                    [[p["name"], p["status"], _cell(p.get("seconds"), ".0f"), _cell(p.get("budget_s"), ".0f"),
                      _cell(p.get("note"))] for p in r.get("phases", [])])
    t = r.get("tests", {})
    counts = t.get("counts", {})
    failures = t.get("failures", [])
    lines += ["", f"## Tests: {counts.get('passed', 0)} passed, {counts.get('failed', 0)} failed, "
              f"{counts.get('error', 0)} errors, {counts.get('unfinished', 0)} unfinished, "
              f"{counts.get('skipped', 0)} skipped", ""]
    if failures:
        lines += _table(["test", "phase", "when", "message"],
                        [[f"`{_cell(f['id'])}`", f["phase"], f["when"], _cell(f["message"])] for f in failures])
    else:
        lines.append("No test failures.")
    lines += ["", "## Benchmarks", "",
              "Median of the timed rounds. Rate: TFLOP/s where the case counts FLOPs, else GB/s of the bytes "
              "that must move; % peak: of the datasheet peak above for the dtype (fp32: no TF32); "
              "x best peer: lavin_fast's speedup over the fastest other implementation of the same case.", ""]
    lines += _table(["suite", "case", "dtype", "pass", "impl", "ms", "rate", "unit", "% peak", "x best peer"],
                    [[b["suite"], _cell(b["case"]), _cell(b["dtype"]), _cell(b["passes"]), _cell(b["impl"]),
                      _cell(b["median_ms"], ".3f"), _cell(b["rate"], ".1f"), _cell(b["unit"]),
                      _cell(b["fraction_of_peak"] and 100 * b["fraction_of_peak"], ".0f"),
                      _cell(b.get("x_best_peer"), ".2f")] for b in r.get("benchmarks", [])])
    jd = r.get("jdit") or {}
    lines += ["", "## J-DiT step (lavin-fast bench)", ""]
    if jd.get("rows"):
        lines.append(f"Config {jd.get('config')}, {jd.get('dtype')}.")
        lines.append("")
        lines += _table(["row", "ms", "x reference eager"],
                        [[x["name"], _cell(x["ms"], ".2f"), _cell(x["x_reference_eager"], ".2f")] for x in jd["rows"]])
    else:
        lines.append("Not run or no result (see Phases).")
    missing = r.get("not_measured", [])
    lines += ["", "## Not measured", ""]
    lines += [f"- `{_cell(m['id'])}`: {_cell(m['reason'])}" for m in missing] or ["Every peer ran."]
    return "\n".join(lines) + "\n"
