"""The one timing harness every benchmark goes through: warm-up, round calibration, pytest-benchmark's
pedantic mode, and the numbers the report needs (bytes, elements, rounds) in ``extra_info``."""

import math
import statistics
import time

import torch

from lavin_fast.machine import ClockProbe


def cuda_synced_perf_counter():
    """pytest-benchmark timer for GPU runs (conftest installs it with --device cuda): kernels launch
    asynchronously, so each round is timed from an idle GPU to an idle GPU. Synchronising in the timer
    rather than after every call keeps the ~10 us sync latency out of the per-call time when a round
    runs several iterations."""
    torch.cuda.synchronize()
    return time.perf_counter()


def _sync(device):
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device=None, clock=time.perf_counter):
    """(fn(), seconds it took), from an idle device to an idle device (kernels launch asynchronously)."""
    _sync(device)
    t0 = clock()
    out = fn()
    _sync(device)
    return out, clock() - t0


def call_seconds(fn, device=None, iterations=1, clock=time.perf_counter):
    """Seconds per call of `iterations` back-to-back fn() calls, synchronised once around them all."""
    def calls():
        for _ in range(iterations):
            fn()
    return timed(calls, device, clock)[1] / iterations


def round_seconds(fn, rounds, device=None, clock=time.perf_counter):
    """Seconds of each of `rounds` single calls after one warm-up call; the caller takes min or median.
    clock=time.process_time gives CPU time (all threads) instead of wall time."""
    fn()
    return [call_seconds(fn, device, clock=clock) for _ in range(rounds)]


class Budget:
    """How long to measure each benchmark.

    Rounds are sized from one calibration call so that slow baselines (eager fp32 fwd+bwd takes
    about a second on this 2-core machine) get the minimum number of rounds and fast kernels get
    enough for a stable median, while the whole suite stays within a few minutes.
    """

    def __init__(self, quick):
        self.seconds = 0.25 if quick else 1.0  # timed seconds per benchmark (after warm-up)
        self.min_rounds = 3 if quick else 5  # median and IQR need a handful of rounds
        self.max_rounds = 50 if quick else 200
        # A round shorter than this runs several iterations (GPU kernels of ~50 us), so the
        # timer's own cost and the per-round sync stay under ~1% of what is measured.
        self.min_round_seconds = 2e-3
        # Rounds of the copy_ timed before and after each lavin_fast benchmark (Harness.run).
        self.copy_rounds = 5 if quick else 10


class Harness:
    def __init__(self, device, budget):
        self.device = torch.device(device)
        self.budget = budget
        self._clocks = ClockProbe(device)

    def _call_seconds(self, fn, iterations=1):
        return call_seconds(fn, self.device, iterations)

    def _iterations(self, seconds_per_call):
        return max(1, math.ceil(self.budget.min_round_seconds / max(seconds_per_call, 1e-9)))

    def _copy_block(self, copy):
        """Seconds per call of ``copy`` in copy_rounds rounds, warmed up and timed like the op."""
        if copy is None:
            return []
        copy()
        iterations = self._iterations(self._call_seconds(copy))
        return [self._call_seconds(copy, iterations) for _ in range(self.budget.copy_rounds)]

    def run(self, benchmark, fn, *, group, bytes_moved, elements, paired_copy=None, **info):
        """Times ``fn()`` (no arguments; it must not depend on state left by earlier calls).

        The first call is a warm-up outside the timed region: it compiles torch.compile graphs
        (forward and, for fwd+bwd, the backward), and faults in the allocator's caches. The second
        call calibrates the number of rounds.

        paired_copy: a copy of known bytes (``paired_copy.bytes``), timed in a block of rounds just
        before and just after the op's rounds. On a shared machine the load changes within minutes
        (copy_ bandwidth measured 12.5 and 30.7 GB/s in two runs ten minutes apart), so the op's
        bandwidth is compared with a copy measured seconds away, under the same load. Blocks rather
        than a copy before every round: any gap between calls slows the next one on this VM (the
        fp32 QK-norm forward takes 9.8 ms back to back, 14.6 ms after a 7 ms sleep, 17.7 ms after
        a copy), so both are timed back to back, as the suite's copy baseline is.
        """
        b = self.budget
        copy_seconds = self._copy_block(paired_copy)
        fn()
        t = max(self._call_seconds(fn), 1e-9)
        iterations = self._iterations(t)
        rounds = min(b.max_rounds, max(b.min_rounds, math.ceil(b.seconds / (t * iterations))))

        benchmark.group = group
        benchmark.extra_info.update(info)
        benchmark.extra_info.update(bytes=int(bytes_moved), elements=int(elements), rounds=rounds,
                                    iterations=iterations, device=str(self.device))
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            base = torch.cuda.memory_allocated(self.device)
        benchmark.pedantic(fn, rounds=rounds, iterations=iterations, warmup_rounds=0)
        copy_seconds += self._copy_block(paired_copy)
        if copy_seconds:
            benchmark.extra_info.update(paired_copy_bytes=int(paired_copy.bytes),
                                        paired_copy_median_s=statistics.median(copy_seconds))
        if self.device.type == "cuda":
            # Memory the op needs beyond its inputs: outputs, saved tensors and temporaries.
            peak = torch.cuda.max_memory_allocated(self.device)
            benchmark.extra_info["peak_extra_memory_bytes"] = peak - base
            benchmark.extra_info.update(self._clocks.read())
