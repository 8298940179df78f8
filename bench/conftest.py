"""pytest wiring of the benchmark suite: collection of bench_*.py, the device and quick options, the
shared harness fixture, and the environment recorded into pytest-benchmark's JSON.

Run with ``python -m pytest bench/ --benchmark-only`` (or ``python -m bench.report`` for the table).
"""

import os
from pathlib import Path

import pytest
import torch

from lavin_fast import machine
from bench.timing import Budget, Harness

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_TIMER = "time.perf_counter"


def pytest_addoption(parser):
    g = parser.getgroup("lavin_fast benchmarks")
    g.addoption("--device", default=os.environ.get("LAVIN_FAST_BENCH_DEVICE", "cpu"),
                help='device to benchmark on: "cpu" (default) or "cuda[:i]" '
                     "(env LAVIN_FAST_BENCH_DEVICE)")
    g.addoption("--threads", type=int, default=int(os.environ.get("LAVIN_FAST_BENCH_THREADS", "0")),
                help="torch.set_num_threads for the run (default: torch's choice; env "
                     "LAVIN_FAST_BENCH_THREADS). On a shared 2-core box, 1 thread avoids waiting at "
                     "every parallel region for a thread the OS has descheduled")
    g.addoption("--quick", action="store_true",
                default=os.environ.get("LAVIN_FAST_BENCH_QUICK", "") not in ("", "0"),
                help="fewer cases and rounds, for a smoke run (env LAVIN_FAST_BENCH_QUICK=1)")


def _device(config):
    return config.getoption("--device", default="cpu")


def pytest_configure(config):
    if config.getoption("--threads", default=0):
        torch.set_num_threads(config.getoption("--threads"))
    dev = _device(config)
    if dev.startswith("cuda"):
        if not torch.cuda.is_available():
            raise pytest.UsageError(f"--device {dev}: torch sees no CUDA device on this machine")
        # Runs before pytest-benchmark's own configure (trylast), so its session picks this up.
        if config.getoption("benchmark_timer", default=DEFAULT_TIMER) == DEFAULT_TIMER:
            config.option.benchmark_timer = "bench.timing.cuda_synced_perf_counter"
    # Every (op, dtype) gets its own torch.compile graphs for fwd and fwd+bwd; the default limit of
    # 8 graphs per function would fall back to eager silently for rms_norm (with and without weight).
    torch._dynamo.config.recompile_limit = 64


def _named_on_command_line(config):
    """pyproject's testpaths keep `pytest` on tests/, but when tests/ is missing pytest recurses from
    the root; benchmarks then run only if bench/ (or a file in it) was named explicitly."""
    base = Path(config.invocation_params.dir)
    for arg in config.args:
        p = (base / arg.split("::")[0]).resolve()
        if p == BENCH_DIR or BENCH_DIR in p.parents:
            return True
    return False


def pytest_collect_file(file_path, parent):
    # python_files (test_*.py) is global to the project, so bench_*.py is collected here instead.
    # A file named on the command line is already collected by pytest itself: skip it here.
    if (file_path.suffix == ".py" and file_path.name.startswith("bench_")
            and not parent.session.isinitpath(file_path) and _named_on_command_line(parent.config)):
        return pytest.Module.from_parent(parent, path=file_path)
    return None


@pytest.fixture(scope="session")
def device(pytestconfig):
    return torch.device(_device(pytestconfig))


@pytest.fixture(scope="session")
def quick(pytestconfig):
    return bool(pytestconfig.getoption("--quick", default=False))


@pytest.fixture(scope="session")
def harness(device, quick):
    return Harness(device, Budget(quick))


def pytest_benchmark_update_machine_info(config, machine_info):
    machine_info.update(machine.software_info())
    machine_info.update(machine.gpu_info(_device(config)))
    machine_info["bench_device"] = _device(config)
    machine_info["bench_quick"] = bool(config.getoption("--quick", default=False))
