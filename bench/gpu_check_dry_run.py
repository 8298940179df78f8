"""The dry run of scripts/gpu-check (bench/gpu_check.py): without a GPU, or with --dry-run, synthetic
results go through the same report path as a real run's and the written report is read back. What CI
runs; standard library only."""

import json
import sys

from bench import gpu_check_report as rep

SYNTHETIC_DEVICE = {"name": "synthetic H100 80GB HBM3", "gpu": "synthetic H100 80GB HBM3", "capability": "9.0",
                    "gpu_driver": "0.0 (dry run)", "gpu_memory_total_bytes": 80 * 2**30, "multiprocessors": 132,
                    "gpu_sm_clock_mhz": 1980, "gpu_sm_clock_max_mhz": 1980, "device_count": 1,
                    "torch": "synthetic", "torch_cuda": "synthetic"}


def _synthetic_benchmark(name, group, median, **extra):
    return {"name": name, "fullname": f"bench/bench_synthetic.py::{name}", "group": group,
            "stats": {"median": median, "iqr": median * 0.02, "rounds": 20},
            "extra_info": dict(extra, sm_clock_mhz=1980)}


def dry_run(run, reason):
    """Synthetic results written where the real phases write theirs, then read back by the same code:
    a test stream with a pass, a failure and a test killed by a timeout, a benchmark JSON and a
    benchmark stream, a J-DiT JSON. Returns 0 when the written report reads back consistently."""
    print("no CUDA GPU visible: dry run" if reason != "--dry-run" else "dry run (--dry-run)", flush=True)
    run.device, run.synthetic = dict(SYNTHETIC_DEVICE), True
    run.phase("probe", "skipped", note=f"dry run: {reason}")
    run.raw.mkdir(parents=True, exist_ok=True)
    stream = run.raw / "tests.stream.jsonl"
    ids = ["tests/test_norms.py::test_rms_norm[cuda-72-True-torch.bfloat16]",
           "tests/test_attention.py::test_forward_masks[cuda-all-bfloat16]",
           "tests/test_cuda_only.py::test_attention_backward_deterministic_twice[synthetic]"]
    events = [{"event": "start", "nodeid": ids[0]},
              {"event": "report", "nodeid": ids[0], "when": "call", "outcome": "passed"},
              {"event": "start", "nodeid": ids[1]},
              {"event": "report", "nodeid": ids[1], "when": "call", "outcome": "failed",
               "longrepr": "def test():\n>   assert 0\nE   AssertionError: synthetic failure (dry run)"},
              {"event": "start", "nodeid": ids[2]}]
    stream.write_text("".join(json.dumps(e) + "\n" for e in events) + '{"event": "rep')  # a torn last line
    counts, failures = rep.test_outcomes(rep.read_stream(stream), "tests", timed_out=True)
    run.test_counts, run.failures = counts, failures
    run.phase("tests", "timeout", 110.0, 110.0, "synthetic: one failure, one test killed by the timeout")
    peak = rep.peak_for(run.device["gpu"])
    bench_json = run.raw / "bench-synthetic.json"
    bench_json.write_text(json.dumps({"benchmarks": [
        _synthetic_benchmark("test_matmul[bf16]", "ceiling matmul", 1.5e-3, kind="ceiling", impl="torch.mm",
                             dtype="bf16", case="matmul 8192^3", passes="fwd", flops=2 * 8192 ** 3, bytes=0),
        _synthetic_benchmark("test_norm[lavin_fast]", "rms_norm bf16 fwd", 30e-6, kind="op", impl="lavin_fast",
                             dtype="bf16", case="rms_norm", passes="fwd", bytes=2 * 10240 * 2304 * 2),
        _synthetic_benchmark("test_norm[eager]", "rms_norm bf16 fwd", 90e-6, kind="op", impl="eager",
                             dtype="bf16", case="rms_norm", passes="fwd", bytes=2 * 10240 * 2304 * 2)]}))
    run.benchmarks = rep.benchmark_rows(json.loads(bench_json.read_text())["benchmarks"], peak)
    run.not_measured = rep.skipped_benchmarks([{"event": "report", "outcome": "skipped", "when": "setup",
                                                "nodeid": "bench/bench_attention_cuda.py::test_attention[flash_attn]",
                                                "skip_reason": "flash-attn is not installed (synthetic)"}])
    run.phase("bench", "ok", 150.0, 150.0, "synthetic")
    jdit = {"config": {"hidden_size": 2304, "depth": 2}, "dtype": "bf16",
            "cfg_step_seconds": {"reference eager, two passes": 0.020, "lavin_fast, packed CFG": 0.010},
            "mixed": {"grids": [32, 24, 16], "padded_seconds": 0.012, "packed_seconds": 0.008}}
    run.jdit = {"config": jdit["config"], "dtype": "bf16", "rows": rep.jdit_rows(jdit)}
    run.phase("jdit", "ok", 40.0, 40.0, "synthetic")
    report = run.report(dry_run_reason=reason)
    js, md = rep.write(report, run.out)
    back = json.loads(js.read_text())
    text = md.read_text()
    checks = {
        "schema": back["schema"] == rep.SCHEMA,
        "verdict FAIL (a synthetic failure)": back["ok"] is False and "**Result: FAIL**" in text,
        "failure with its test id": ids[1] in text and "synthetic failure" in text,
        "timed-out test named": ids[2] in text and "did not finish" in text,
        "fraction of peak": abs(back["benchmarks"][0]["fraction_of_peak"] - 2 * 8192**3 / 1.5e-3 / 1e12 / 989.4) < 1e-9,
        "x best peer": abs(back["benchmarks"][1]["x_best_peer"] - 3.0) < 1e-9,
        "not measured": "flash-attn is not installed" in text,
    }
    bad = [k for k, ok in checks.items() if not ok]
    print(f"report: {js}\n        {md}")
    if bad:
        print("dry run: the report did not read back: " + ", ".join(bad), file=sys.stderr)
        return 1
    print("dry run: report written and read back")
    return 0
