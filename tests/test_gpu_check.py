"""scripts/gpu-check without a GPU: the dry run of its report path (what CI runs), the report's
conversion of benchmark rows into TFLOP/s, GB/s and fractions of the device's peak on known numbers,
the device-name -> peak table, test outcomes from the streamed events, and the phase timeout that
kills a whole process group."""

import json
import os
import subprocess
import sys
import time

import pytest
import torch

from bench import gpu_check_report as rep
from bench.gpu_check import run_logged

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "scripts", "gpu-check")


def _run_script(*args, timeout=180):
    env = dict(os.environ, PYTHON=sys.executable)
    return subprocess.run([SCRIPT, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def _read_report(out):
    with open(out / rep.JSON_NAME) as f:
        data = json.load(f)
    return data, (out / rep.MARKDOWN_NAME).read_text()


def test_dry_run_writes_and_reads_back_the_report(tmp_path):
    r = _run_script("--dry-run", "--out", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dry run: report written and read back" in r.stdout
    data, md = _read_report(tmp_path)
    assert data["schema"] == rep.SCHEMA and data["dry_run"] and data["ok"] is False
    failed = [f["id"] for f in data["tests"]["failures"]]
    assert "tests/test_attention.py::test_forward_masks[cuda-all-bfloat16]" in failed
    assert data["tests"]["counts"] == dict(passed=1, failed=1, error=0, skipped=0, unfinished=1)
    assert "**DRY RUN**" in md and "**Result: FAIL**" in md and "synthetic failure (dry run)" in md


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU this would be the real run")
def test_without_a_gpu_it_says_so_and_dry_runs(tmp_path):
    r = _run_script("--out", str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "no CUDA GPU visible: dry run" in r.stdout
    data, _ = _read_report(tmp_path)
    assert data["dry_run"] and "sees no CUDA device" in data["dry_run_reason"]


@pytest.mark.parametrize("arg,match", [("0", "> 0, got 0"), ("inf", "finite"), ("x", "invalid float value")])
def test_bad_budget_is_a_one_line_error(arg, match):
    r = _run_script("--budget-s", arg, timeout=60)
    assert r.returncode == 2 and match in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def _bench(name, group, median, **extra):
    return {"name": name, "fullname": f"bench/bench_x.py::{name}", "group": group,
            "stats": {"median": median, "iqr": median / 10, "rounds": 7}, "extra_info": extra}


def test_benchmark_rows_rates_and_fractions_of_peak():
    h100 = rep.peak_for("NVIDIA H100 80GB HBM3")
    rows = rep.benchmark_rows([
        # 4e12 FLOP in 10 ms = 400 TFLOP/s of bf16's 989.4
        _bench("attn", "attention fwd", 10e-3, kind="attention", impl="lavin_fast", dtype="bf16", flops=4e12,
               bytes=1e9),
        _bench("attn_flash", "attention fwd", 15e-3, kind="attention", impl="sdpa_flash", dtype="bf16", flops=4e12),
        _bench("attn_flex", "attention fwd", 12e-3, kind="attention", impl="flex", dtype="bf16", flops=4e12),
        # fp32 (no TF32): 6.7e11 FLOP in 20 ms = 33.5 TFLOP/s = half of 67
        _bench("linear", "linear", 20e-3, kind="linear", impl="eager", dtype="fp32", flops=6.7e11),
        # 3.35e9 bytes in 2 ms = 1675 GB/s = half of 3350
        _bench("norm", "norm", 2e-3, kind="op", impl="lavin_fast", dtype="bf16", bytes=3.35e9),
        _bench("copy", "copy", 1e-3, kind="copy", impl="copy_", dtype="bf16", bytes=1e9),
    ], h100)
    attn, flash, flex, linear, norm, copy = rows
    assert attn["unit"] == "TFLOP/s" and attn["rate"] == pytest.approx(400)
    assert attn["fraction_of_peak"] == pytest.approx(400 / 989.4)
    assert attn["best_peer"] == "flex" and attn["x_best_peer"] == pytest.approx(1.2)
    assert "x_best_peer" not in flash
    assert attn["median_ms"] == pytest.approx(10) and attn["iqr_pct"] == pytest.approx(10)
    assert linear["rate"] == pytest.approx(33.5) and linear["fraction_of_peak"] == pytest.approx(0.5)
    assert norm["unit"] == "GB/s" and norm["rate"] == pytest.approx(1675)
    assert norm["fraction_of_peak"] == pytest.approx(0.5)
    assert "x_best_peer" not in norm and "x_best_peer" not in copy  # no peer in its group; copies never
    assert attn["suite"] == "x"
    unknown = rep.benchmark_rows([_bench("norm", "norm", 2e-3, kind="op", impl="lavin_fast", dtype="bf16",
                                         bytes=3.35e9)], rep.peak_for("NVIDIA GeForce RTX 4090"))[0]
    assert unknown["rate"] == pytest.approx(1675) and unknown["fraction_of_peak"] is None


@pytest.mark.parametrize("name,key", [
    ("NVIDIA H100 80GB HBM3", "H100 SXM"), ("NVIDIA H100 SXM5 80GB", "H100 SXM"), ("NVIDIA H100 PCIe", "H100 PCIe"),
    ("NVIDIA H200", "H200 SXM"), ("NVIDIA A100-SXM4-80GB", "A100 SXM 80GB"), ("NVIDIA A100-SXM4-40GB", "A100 SXM 40GB"),
    ("NVIDIA A100 80GB PCIe", "A100 PCIe 80GB"), ("NVIDIA A100-PCIE-40GB", "A100 PCIe 40GB"),
    ("NVIDIA H100 NVL", None), ("NVIDIA H200 NVL", None), ("NVIDIA GH200 480GB", None), ("NVIDIA L40S", None),
    (None, None)])
def test_peak_of_each_device_name(name, key):
    assert rep.peak_key(name) == key


def test_unknown_peak_is_said_in_the_markdown():
    md = rep.markdown({"device": {"gpu": "NVIDIA L40S"}, "peak": None, "phases": [], "tests": {}, "benchmarks": []})
    assert "unknown peak" in md and "**Result: FAIL**" in md


def test_outcomes_from_the_stream(tmp_path):
    events = [{"event": "start", "nodeid": "a"},
              {"event": "report", "nodeid": "a", "when": "setup", "outcome": "passed"},
              {"event": "report", "nodeid": "a", "when": "call", "outcome": "passed"},
              {"event": "start", "nodeid": "b"},
              {"event": "report", "nodeid": "b", "when": "call", "outcome": "failed",
               "longrepr": "x = 1\n>   assert x == 2\nE   assert 1 == 2\nE    +  where ..."},
              {"event": "start", "nodeid": "c"},
              {"event": "report", "nodeid": "c", "when": "setup", "outcome": "skipped", "skip_reason": "no flash-attn"},
              {"event": "start", "nodeid": "d"},
              {"event": "report", "nodeid": "d", "when": "teardown", "outcome": "failed",
               "longrepr": "RuntimeError: boom"},
              {"event": "report", "nodeid": "tests/test_m.py", "when": "collect", "outcome": "failed",
               "longrepr": "ImportError while importing\nE   ModuleNotFoundError: No module named 'x'"},
              {"event": "start", "nodeid": "e"}]
    path = tmp_path / "s.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events) + '{"event": "rep')  # torn by a kill
    counts, failures = rep.test_outcomes(rep.read_stream(path), "tests", timed_out=True)
    assert counts == dict(passed=1, failed=1, error=2, skipped=1, unfinished=1)
    assert [(f["id"], f["when"]) for f in failures] == [("b", "call"), ("d", "teardown"),
                                                        ("tests/test_m.py", "collect"), ("e", "call")]
    assert failures[0]["message"] == "assert 1 == 2 / +  where ..."
    assert failures[1]["message"] == "RuntimeError: boom"
    assert failures[2]["message"] == "ModuleNotFoundError: No module named 'x'"
    assert failures[3]["message"] == "did not finish (the phase timed out)"
    assert rep.skipped_benchmarks(rep.read_stream(path)) == [{"id": "c", "reason": "no flash-attn"}]


def _gone(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.startswith("State:") and "Z" in line.split()[1] for line in f)
    except FileNotFoundError:
        return True


def test_phase_timeout_kills_the_whole_process_group(tmp_path):
    log = tmp_path / "phase.log"
    child = ("import subprocess, sys, time; "
             "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
             "print('grandchild', p.pid, flush=True); time.sleep(120)")
    t0 = time.monotonic()
    status, rc, seconds = run_logged([sys.executable, "-c", child], log, timeout=3)
    assert status == "timeout" and rc is None and time.monotonic() - t0 < 60
    pid = next(int(line.split()[1]) for line in log.read_text().splitlines() if line.startswith("grandchild "))
    deadline = time.monotonic() + 10
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(pid), "the grandchild outlived its phase"
