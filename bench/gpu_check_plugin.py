"""pytest plugin of the GPU acceptance run (bench/gpu_check.py loads it with ``-p bench.gpu_check_plugin``):
appends every test's start, every phase report and every benchmark's statistics to the JSON-lines file
named by $LAVIN_FAST_GPU_CHECK_STREAM as they happen. junitxml and --benchmark-json are written only
when the session ends, so a run killed at its time limit would otherwise leave no trace of what
passed, what failed, and which test was running."""

import json
import os

ENV = "LAVIN_FAST_GPU_CHECK_STREAM"
_path = None


def _emit(record):
    with open(_path, "a") as f:  # one write per line: a kill leaves at most one torn last line
        f.write(json.dumps(record, default=str) + "\n")


def pytest_configure(config):
    global _path
    # Under pytest-xdist the controller receives every worker's reports: only it writes.
    _path = None if hasattr(config, "workerinput") else os.environ.get(ENV) or None


def pytest_runtest_logstart(nodeid, location):
    if _path:
        _emit({"event": "start", "nodeid": nodeid})


def pytest_runtest_logreport(report):
    if not _path:
        return
    rec = {"event": "report", "nodeid": report.nodeid, "when": report.when, "outcome": report.outcome,
           "duration": report.duration}
    if report.failed:
        rec["longrepr"] = report.longreprtext
    elif report.skipped and isinstance(report.longrepr, tuple):
        rec["skip_reason"] = str(report.longrepr[2]).removeprefix("Skipped: ")
    _emit(rec)


def pytest_collectreport(report):
    """A test module that fails to import (with --continue-on-collection-errors the rest still runs)."""
    if _path and report.failed:
        _emit({"event": "report", "nodeid": report.nodeid, "when": "collect", "outcome": "failed",
               "longrepr": report.longreprtext})


def pytest_runtest_teardown(item):
    """The benchmark's statistics as pytest-benchmark's JSON has them, written as soon as it ran."""
    if not _path:
        return
    fixture = getattr(item, "funcargs", {}).get("benchmark")
    stats = getattr(fixture, "stats", None)
    if stats is None:
        return
    try:
        row = stats.as_dict(include_data=False)
    except Exception as e:  # another pytest-benchmark version: the end-of-session JSON still has it
        row = {"error": f"{type(e).__name__}: {e}"}
    _emit({"event": "benchmark", "nodeid": item.nodeid, "benchmark": row})


def pytest_sessionfinish(session, exitstatus):
    if _path:
        _emit({"event": "finish", "exitstatus": int(exitstatus)})
