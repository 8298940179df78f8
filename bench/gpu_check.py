"""The GPU acceptance run in one command (scripts/gpu-check): on a machine with an NVIDIA GPU and torch,
build lavin_fast._C for that GPU's architecture only, run the GPU half of tests/ (the "cuda" test ids:
every op against the float64 reference, forward and backward, and the deterministic backwards run
twice bitwise, tests/test_cuda_only.py), the per-op benchmarks on the GPU against the strongest peers
there (bench/: SDPA's flash and cuDNN backends, FlexAttention, flash-attn when installed, torch.compile
of the references, cuDNN conv3d with the padded copy) and the J-DiT step (`lavin-fast bench`), then
write one JSON and one markdown report (bench/gpu_check_report.py) into --out.

    scripts/gpu-check [--out DIR] [--skip-build] [--quick] [--budget-s S] [--memcheck] [--dry-run]

Without a visible GPU (or with --dry-run) it prints "no CUDA GPU visible: dry run", writes the report
of synthetic results, reads it back, and exits 0: what CI runs. Otherwise the exit status is 0 only when
every phase finished and nothing failed.

Time budget: --budget-s (default 480 s, the issue's 8 minutes on a 16-core machine with one H100).
Every phase is a subprocess with a timeout, in its own process group (killed whole at the limit), and
the report is written whatever happens; a test or benchmark that was running when its phase was
killed is named in it (bench/gpu_check_plugin.py streams results as they come). A phase may use all
the time left except what the later phases keep (the "kept" column, scaled by --budget-s / 480): a
phase that ends early leaves its time to the later ones, one that overruns squeezes them to what they
keep, and a hung one cannot take that. The expected durations are GUESSES until the first GPU run
replaces them with the report's measured seconds:

  phase     kept   expected on 16 cores + one H100
  probe     -      ~5 s (at most 60): torch, the device, NVML
  build     -      ~2-3 min (a guess: one architecture, MAX_JOBS = cores; the 2-core development box
                   spent ~32 min of compiler time on two architectures, the sum of build/temp/.ninja_log's
                   durations, its longest file ~6 min)
  import    -      ~10 s (at most 60): lavin_fast._C imports and has its CUDA kernels
  tests     60     ~1-1.5 min: ~530 "cuda" test ids, 4 pytest-xdist workers when installed
  memcheck  30     only with --memcheck: compute-sanitizer over one case per op of tests/test_cuda_only.py
  bench     100    ~2-2.5 min: five pytest-benchmark runs (20 s kept for each) with the suites' --quick
                   sizing; each pays ~5 s of start-up, torch.compile of the references ~30 graphs
  jdit      30     ~30 s: the released width (2304, 32/8 heads) at depth 2, 4 pairs, eager reference
                   (--jdit-compile adds torch.compile of the reference: ~1 min more)

--quick: bf16 only in the norm and rope suites, no fp32 linear suite, a smaller J-DiT grid (the tests
are never trimmed). A phase left with under 15 s is not run.
"""

import argparse
import datetime
import json
import math
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # as bench/report.py: also runs as `python bench/gpu_check.py`
from bench import gpu_check_report as rep  # noqa: E402
from bench.gpu_check_dry_run import dry_run  # noqa: E402
from bench.gpu_check_probe import cores  # noqa: E402
from bench.gpu_check_plugin import ENV as STREAM_ENV  # noqa: E402

DEFAULT_BUDGET_S = 480
KEPT_S = {"tests": 60, "memcheck": 30, "bench": 100, "jdit": 30}  # of the default budget (see above)
SUITE_KEPT_S = 20
PROBE_CAP_S = 60
IMPORT_CAP_S = 60
RESERVE_S = 5  # kept for writing the report
MIN_PHASE_S = 15
TEST_TIMEOUT_S = 120  # per test (pytest-timeout), so one hung kernel fails one test, not the phase
TEST_WORKERS = 4
BENCH_SUITES = [  # (label, files): run in this order, each its own pytest process
    ("ceilings+norms", ["bench/bench_ceilings_cuda.py", "bench/bench_norms.py"]),
    ("attention", ["bench/bench_attention_cuda.py"]),
    ("rope", ["bench/bench_rope.py"]),
    ("conv", ["bench/bench_conv_cuda.py"]),
    ("linear", ["bench/bench_linear.py"]),
]
QUICK_SKIPS_SUITES = {"linear"}  # fp32 only
QUICK_K = {"ceilings+norms": "not fp32", "rope": "not fp32"}
JDIT_ARGS = ["--hidden", "2304", "--depth", "2", "--pairs", "4", "--repeats", "10"]
# memcheck multiplies every kernel's time: one case per op of tests/test_cuda_only.py
MEMCHECK_K = ("fp16-d128 or (norm_backward and rms_norm_modulate-torch.bfloat16) or "
              "(qk_norm_rope and 8-torch.bfloat16) or (conv3d_forward and c4-o70 and bfloat16)")


def log(msg):
    print(f"[gpu-check] {msg}", flush=True)


# ---- subprocesses ----

def run_logged(cmd, log_path, timeout, env=None):
    """Runs cmd with stdout+stderr into log_path, in its own process group; at the timeout the whole
    group (ninja's compilers, pytest-xdist's workers) gets SIGTERM, then SIGKILL. Returns (status,
    returncode, seconds) with status "ok", "failed" or "timeout"."""
    t0 = time.monotonic()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as out:
        out.write("$ " + " ".join(map(str, cmd)) + "\n")
        out.flush()
        proc = subprocess.Popen([str(c) for c in cmd], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=max(timeout, 1))
            return ("ok" if rc == 0 else "failed"), rc, time.monotonic() - t0
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return "timeout", None, time.monotonic() - t0
        except BaseException:  # Ctrl-C: the children are in their own group and would run on
            _kill_group(proc)
            raise


def _kill_group(proc):
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            pass


def tail(path, n=15):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def child_env(extra=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    # The interpreter's own bin/ first: the build runs `ninja` (a pip package there) by name.
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def json_of_run(cmd, log_path, timeout, env):
    """run_logged, plus the last line of its output that parses as a JSON object (or None)."""
    status, rc, sec = run_logged(cmd, log_path, timeout, env)
    for line in reversed(Path(log_path).read_text(errors="replace").splitlines()):
        if line.startswith("{"):
            try:
                return status, rc, sec, json.loads(line)
            except json.JSONDecodeError:
                pass
    return status, rc, sec, None


# ---- the run ----

class Run:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out).resolve()
        self.logs = self.out / "logs"
        self.raw = self.out / "raw"
        self.t0 = time.monotonic()
        self.deadline = self.t0 + args.budget_s
        self.started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        self.phases, self.failures, self.benchmarks, self.not_measured = [], [], [], []
        self.test_counts = {}
        self.device, self.software, self.jdit = {}, {}, None
        self.py = sys.executable
        self.synthetic = False  # the dry run's phases

    def left(self):
        return self.deadline - time.monotonic()

    def kept(self, seconds):
        return seconds * self.args.budget_s / DEFAULT_BUDGET_S

    def allowance(self, later):
        """Seconds this phase may use: all that is left but what the later phases keep."""
        return self.left() - RESERVE_S - sum(self.kept(KEPT_S[p]) for p in later)

    def phase(self, name, status, seconds=None, budget=None, note=None, returncode=None, log_path=None):
        rec = dict(name=name, status=status, seconds=seconds, budget_s=budget, note=note, returncode=returncode,
                   log=str(log_path.relative_to(self.out)) if log_path else None)
        self.phases.append(rec)
        log(("(synthetic) " if self.synthetic else "") + f"{name}: {status}" +
            (f" in {seconds:.0f} s" if seconds is not None else "") +
            (f" (budget {budget:.0f} s)" if budget is not None else "") + (f"; {note}" if note else ""))
        if status in ("failed", "timeout") and log_path:
            print(tail(log_path), flush=True)
        return rec

    # -- phases --

    def probe(self):
        lp = self.logs / "probe.log"
        status, rc, sec, data = json_of_run([self.py, "-m", "bench.gpu_check_probe"], lp,
                                            min(PROBE_CAP_S, self.left()), child_env())
        if data is None:
            self.phase("probe", status if status != "ok" else "failed", sec, PROBE_CAP_S,
                       "torch could not be imported or queried (see the log)", rc, lp)
            return None
        self.device = data
        self.phase("probe", "ok", sec, PROBE_CAP_S, f"{data.get('device_count', 0)} GPU(s), torch {data['torch']}",
                   rc, lp)
        return data

    def build(self, later):
        arch = self.device["capability"]
        jobs = cores()
        if self.args.skip_build:
            self.phase("build", "skipped", note="--skip-build")
            return True
        budget = self.allowance(later)
        if budget < MIN_PHASE_S:
            self.phase("build", "not run", note=f"out of budget ({budget:.0f} s left for it)")
            return False
        lp = self.logs / "build.log"
        log(f"build: TORCH_CUDA_ARCH_LIST={arch} MAX_JOBS={jobs} setup.py build_ext --inplace (budget {budget:.0f} s)")
        env = child_env({"TORCH_CUDA_ARCH_LIST": arch, "MAX_JOBS": str(jobs), "LAVIN_FAST_CUDA": "1"})
        status, rc, sec = run_logged([self.py, "setup.py", "build_ext", "--inplace"], lp, budget, env)
        self.phase("build", status, sec, budget, f"sm_{arch.replace('.', '')} only, MAX_JOBS={jobs}", rc, lp)
        return status == "ok"

    def import_check(self):
        lp = self.logs / "import.log"
        status, rc, sec, data = json_of_run([self.py, "-m", "bench.gpu_check_probe", "--import-check"], lp,
                                            min(IMPORT_CAP_S, max(self.left() - RESERVE_S, 1)), child_env())
        if data:
            self.software = data
        if status == "ok":
            self.phase("import", "ok", sec, IMPORT_CAP_S, f"lavin_fast {data.get('lavin_fast_version')}", rc, lp)
            return True
        note = "lavin_fast._C has no CUDA kernels" if rc == 3 else "lavin_fast does not import (see the log)"
        self.phase("import", status if status == "timeout" else "failed", sec, IMPORT_CAP_S, note, rc, lp)
        return False

    def pytest_phase(self, name, cmd, budget, env_extra=None, junit=None):
        """Runs a pytest command with the streaming plugin; returns (status, events)."""
        stream = self.raw / f"{name}.stream.jsonl"
        stream.parent.mkdir(parents=True, exist_ok=True)
        stream.unlink(missing_ok=True)
        lp = self.logs / f"{name}.log"
        cmd = [self.py, "-m", "pytest", *cmd, "-p", "no:cacheprovider", "-p", "bench.gpu_check_plugin"]
        if junit:
            cmd += [f"--junitxml={junit}"]
        status, rc, sec = run_logged(cmd, lp, budget, child_env({STREAM_ENV: str(stream), **(env_extra or {})}))
        events = rep.read_stream(stream)
        return status, rc, sec, lp, events

    def tests(self, later):
        budget = self.allowance(later)
        if budget < MIN_PHASE_S:
            self.phase("tests", "not run", note=f"out of budget ({budget:.0f} s left for it)")
            return
        mods = self.device.get("modules", {})
        # A module that does not import is one failure in the report, not the end of the phase.
        cmd = ["tests", "-k", "cuda", "-q", "-rfE", "--continue-on-collection-errors"]
        env = {}
        n_cpu = cores()
        workers = TEST_WORKERS if mods.get("xdist") and n_cpu >= 2 * TEST_WORKERS else 0
        if workers:
            cmd += ["-n", str(workers)]
            env["OMP_NUM_THREADS"] = str(max(1, n_cpu // workers))  # the float64 references run on the CPU
        if mods.get("pytest_timeout"):
            # thread method: a kernel that never returns blocks the signal handler; the thread dumps the
            # stacks and ends the process (xdist replaces the worker and fails that one test)
            cmd += [f"--timeout={TEST_TIMEOUT_S}", "--timeout-method=thread"]
        status, rc, sec, lp, events = self.pytest_phase("tests", cmd, budget, env, junit=self.raw / "tests.junit.xml")
        counts, failures = rep.test_outcomes(events, "tests", timed_out=status == "timeout")
        self.test_counts = counts
        self.failures += failures
        if status == "failed" and not failures:
            note = f"pytest exited {rc} without a failing test (collection error? see the log)"
            self.failures.append({"id": "tests (pytest)", "phase": "tests", "when": "session", "message": note,
                                  "details": tail(lp, 40)})
        else:
            note = ", ".join(f"{v} {k}" for k, v in counts.items() if v) + \
                (f"; {workers} xdist workers" if workers else "")
        self.phase("tests", status, sec, budget, note, rc, lp)

    def memcheck(self, later):
        budget = self.allowance(later)
        sanitizer = self.device.get("compute_sanitizer")
        if not sanitizer:
            self.phase("memcheck", "not run", note="compute-sanitizer not found")
            return
        if budget < MIN_PHASE_S:
            self.phase("memcheck", "not run", note=f"out of budget ({budget:.0f} s left for it)")
            return
        stream = self.raw / "memcheck.stream.jsonl"
        stream.unlink(missing_ok=True)
        lp = self.logs / "memcheck.log"
        cmd = [sanitizer, "--tool", "memcheck", "--error-exitcode", "9", "--print-limit", "10",
               self.py, "-m", "pytest", "tests/test_cuda_only.py", "-k", MEMCHECK_K, "-q",
               "-p", "no:cacheprovider", "-p", "bench.gpu_check_plugin"]
        # Without the caching allocator every tensor is its own allocation, so memcheck sees overruns.
        env = child_env({STREAM_ENV: str(stream), "PYTORCH_NO_CUDA_MEMORY_CACHING": "1"})
        status, rc, sec = run_logged(cmd, lp, budget, env)
        counts, failures = rep.test_outcomes(rep.read_stream(stream), "memcheck", timed_out=status == "timeout")
        self.failures += failures
        errors = [ln for ln in tail(lp, 400).splitlines() if ln.startswith("=========") and "ERROR SUMMARY" in ln]
        note = (errors[-1].strip("= ") if errors else "no ERROR SUMMARY line") + f"; {counts['passed']} passed"
        if rc == 9 and not failures:
            self.failures.append({"id": "tests/test_cuda_only.py (compute-sanitizer)", "phase": "memcheck",
                                  "when": "session", "message": note, "details": tail(lp, 60)})
        self.phase("memcheck", status, sec, budget, note, rc, lp)

    def bench(self, later):
        end = time.monotonic() + self.allowance(later)
        suites = [s for s in BENCH_SUITES if not (self.args.quick and s[0] in QUICK_SKIPS_SUITES)]
        peak = rep.peak_for(self.device.get("gpu") or self.device.get("name"))
        for i, (label, files) in enumerate(suites):
            budget = end - time.monotonic() - self.kept(SUITE_KEPT_S) * (len(suites) - i - 1)
            name = "bench-" + label.replace("+", "-")
            if budget < MIN_PHASE_S:
                self.phase(name, "not run", note=f"out of budget ({budget:.0f} s left for it)")
                continue
            js = self.raw / f"{name}.json"
            js.unlink(missing_ok=True)
            cmd = [*files, "--benchmark-only", "--benchmark-quiet", f"--benchmark-json={js}", "--device=cuda",
                   "--quick", "-q", "-rfE", "--continue-on-collection-errors"]
            if self.args.quick and label in QUICK_K:
                cmd += ["-k", QUICK_K[label]]
            status, rc, sec, lp, events = self.pytest_phase(name, cmd, budget)
            # The session's JSON when it finished; else what the plugin streamed before the kill.
            if js.exists():
                rows = json.loads(js.read_text())["benchmarks"]
            else:
                rows = [ev["benchmark"] for ev in events if ev.get("event") == "benchmark"
                        and "stats" in ev.get("benchmark", {})]
            self.benchmarks += rep.benchmark_rows(rows, peak)
            counts, failures = rep.test_outcomes(events, name, timed_out=status == "timeout")
            self.failures += failures
            self.not_measured += rep.skipped_benchmarks(events)
            if status == "failed" and not failures:
                self.failures.append({"id": f"{' '.join(files)} (pytest)", "phase": name, "when": "session",
                                      "message": f"pytest exited {rc} without a failing benchmark (see the log)",
                                      "details": tail(lp, 40)})
            self.phase(name, status, sec, budget, f"{len(rows)} benchmarks, {counts['skipped']} skipped, "
                       f"{counts['failed'] + counts['error'] + counts['unfinished']} failed", rc, lp)

    def jdit_step(self, later):
        budget = self.allowance(later)
        if budget < MIN_PHASE_S:
            self.phase("jdit", "not run", note=f"out of budget ({budget:.0f} s left for it)")
            return
        js = self.raw / "jdit.json"
        js.unlink(missing_ok=True)
        lp = self.logs / "jdit.log"
        cmd = [self.py, "-m", "lavin_fast", "bench", "--device", "cuda", "--dtype", "bf16", *JDIT_ARGS,
               "--grid", "16" if self.args.quick else "32", "--json", js]
        if not self.args.jdit_compile:
            cmd.append("--no-compile")
        status, rc, sec = run_logged(cmd, lp, budget, child_env())
        note = None
        if js.exists():
            data = json.loads(js.read_text())
            self.jdit = {"config": data.get("config"), "dtype": data.get("dtype"), "rows": rep.jdit_rows(data)}
            step = data["cfg_step_seconds"]
            note = f"lavin_fast packed CFG {step['lavin_fast, packed CFG'] * 1e3:.1f} ms"
        if status != "ok":
            self.failures.append({"id": "lavin-fast bench (J-DiT step)", "phase": "jdit", "when": "call",
                                  "message": status if status == "timeout" else f"exited {rc}: {tail(lp, 1)}",
                                  "details": tail(lp, 40)})
        self.phase("jdit", status, sec, budget, note, rc, lp)

    def execute(self):
        if self.probe() is None:
            return
        if not self.device.get("device_count"):
            return
        plan = ["build", "tests", *(["memcheck"] if self.args.memcheck else []), "bench", "jdit"]
        built = self.build(plan[1:])
        if not (built and self.import_check()):
            for p in plan[1:]:
                self.phase(p, "not run", note="the extension did not build or import")
            return
        steps = {"tests": self.tests, "memcheck": self.memcheck, "bench": self.bench, "jdit": self.jdit_step}
        for i, p in enumerate(plan[1:], start=1):
            steps[p](plan[i + 1:])

    def report(self, dry_run_reason=None):
        dev = dict(self.device)
        peak = rep.peak_for(dev.get("gpu") or dev.get("name"))
        ok = not self.failures and all(p["status"] in ("ok", "skipped") for p in self.phases)
        return {
            "schema": rep.SCHEMA,
            "dry_run": dry_run_reason is not None,
            "dry_run_reason": dry_run_reason,
            "ok": ok,
            "started": self.started,
            "wall_s": time.monotonic() - self.t0,
            "budget_s": self.args.budget_s,
            "argv": sys.argv[1:],
            "commit": _commit(),
            "device": dev,
            "software": self.software,
            "peak": rep.peak_dict(peak),
            "phases": self.phases,
            "tests": {"counts": self.test_counts, "failures": self.failures},
            "benchmarks": self.benchmarks,
            "jdit": self.jdit,
            "not_measured": self.not_measured,
        }


def _commit():
    try:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                           timeout=10)
        return r.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage block), exit status 2."""

    def error(self, message):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def parse_args(argv):
    p = _Parser(prog="scripts/gpu-check", description=__doc__.split("\n\n")[0],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "gpu-check-report"), help="report folder (default gpu-check-report/)")
    p.add_argument("--dry-run", action="store_true", help="synthetic results through the report path; no GPU needed")
    p.add_argument("--skip-build", action="store_true", help="use the extension already built in lavin_fast/")
    p.add_argument("--quick", action="store_true", help="bf16 only in the norm/rope suites, no fp32 linear suite, "
                   "a smaller J-DiT grid; the tests are never trimmed")
    p.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S,
                   help=f"wall-clock budget of the whole run in seconds (default {DEFAULT_BUDGET_S})")
    p.add_argument("--memcheck", action="store_true",
                   help="also run one case per op of tests/test_cuda_only.py under compute-sanitizer's memcheck")
    p.add_argument("--jdit-compile", action="store_true", help="also time torch.compile of the J-DiT reference")
    args = p.parse_args(argv)
    if not (math.isfinite(args.budget_s) and args.budget_s > 0):
        p.error(f"--budget-s: expected a finite number of seconds > 0, got {args.budget_s:g}")
    return args


def main(argv=None):
    args = parse_args(argv)
    run = Run(args)
    if args.dry_run:
        return dry_run(run, "--dry-run")
    try:
        run.execute()
    except KeyboardInterrupt:
        run.phase("run", "failed", note="interrupted (Ctrl-C)")
    except Exception as e:  # a bug here must still leave the report of what ran
        traceback.print_exc()
        run.phase("run", "failed", note=f"gpu-check itself failed: {type(e).__name__}: {e}")
    if not run.phases or run.phases[0]["status"] != "ok":
        print(f"gpu-check: torch is not usable by {sys.executable} (set PYTHON to the python that has torch); "
              f"see {run.logs / 'probe.log'}", file=sys.stderr)
        return 2
    if not run.device.get("device_count"):
        reason = f"torch {run.device.get('torch')} (CUDA {run.device.get('torch_cuda')}) sees no CUDA device"
        return dry_run(Run(args), reason)
    report = run.report()
    js, md = rep.write(report, run.out)
    print(md.read_text(), flush=True)
    log(f"{'PASS' if report['ok'] else 'FAIL'} in {report['wall_s']:.0f} s; report: {js} and {md}")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
