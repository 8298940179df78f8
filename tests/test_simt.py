"""The SIMT emulator: its self-tests (csrc/simt/selftest.cpp, also run by CTest), the errors it raises
in Python, and the backend switch."""

import re

import pytest

from lavin_fast import _C, simt

SELFTESTS = _C.testing.simt_selftests()
FAULTS = [(name, expected) for name, expected in SELFTESTS if expected]


@pytest.mark.parametrize("name", [name for name, _ in SELFTESTS])
def test_selftest(name):
    _C.testing.simt_selftest(name, False)


@pytest.mark.parametrize("name,expected", FAULTS, ids=[name for name, _ in FAULTS])
def test_stopped_kernel_raises_runtime_error(name, expected):
    """A kernel the emulator stops (deadlock, misused collective, exception) is a RuntimeError naming
    the kernel and block, never an abort or a hang."""
    with pytest.raises(RuntimeError, match=r"SIMT emulator: kernel '\w+' block \(0,0,0\): .*" + re.escape(expected)):
        _C.testing.simt_selftest(name, True)


def test_switch_is_scoped():
    assert not simt.is_enabled()
    with simt.enabled("random", seed=5):
        assert _C.simt_mode() == (True, 2, 5)
        with simt.enabled("reverse"):
            assert _C.simt_mode() == (True, 1, 0)
        assert _C.simt_mode() == (True, 2, 5)
    assert _C.simt_mode() == (False, 0, 0)


def test_switch_rejects_unknown_schedule():
    with pytest.raises(ValueError, match="schedule must be one of"):
        with simt.enabled("backwards"):
            pass


def test_switch_is_per_thread():
    """Threads entering and leaving overlapping blocks each see their own setting, never another
    thread's; after every block has exited, a plain fp32 CPU call on any thread runs the CPU kernel
    (the CUDA attention kernels would reject fp32)."""
    import threading

    import torch

    from lavin_fast.attention import varlen_attention

    n = 4
    entered, leave = threading.Barrier(n + 1, timeout=10), [threading.Event() for _ in range(n)]
    left = [threading.Event() for _ in range(n)]
    seen, errors = {}, []

    def worker(i):
        try:
            seen[i, "before"] = _C.simt_mode()
            with simt.enabled(simt.SCHEDULES[i % 3], seed=i):
                entered.wait()  # every thread is inside its block
                assert leave[i].wait(10)
                seen[i] = _C.simt_mode()
            seen[i, "after"] = _C.simt_mode()
        except BaseException as e:  # reported by the main thread
            errors.append(e)
        finally:
            left[i].set()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    entered.wait()
    assert not simt.is_enabled(), "another thread's block switched this thread's ops to the emulator"
    # Leave in the order of entry: the first to enter restores first (the process-wide flag's worst case).
    for i in range(n):
        leave[i].set()
        assert left[i].wait(10)
    for t in threads:
        t.join(10)
    assert not errors, errors
    for i in range(n):
        assert seen[i] == (True, i % 3, i), f"thread {i} saw another thread's setting {seen[i]}"
        assert seen[i, "before"] == seen[i, "after"] == (False, 0, 0)
    assert _C.simt_mode() == (False, 0, 0)
    q = torch.randn(8, 2, 16)
    cu = torch.tensor([0, 8], dtype=torch.int32)
    out, _ = varlen_attention(q, q, q, cu, cu, 8, 8)  # fp32: the CPU kernel (the emulator refuses it)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
