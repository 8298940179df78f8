"""The SIMT emulator: its self-tests (csrc/simt/selftest.cpp, also run by CTest), the errors it raises
in Python, and the backend switch."""

import re

import pytest

from lavin_fast import _C, simt

SELFTESTS = _C.simt_selftests()
FAULTS = [(name, expected) for name, expected in SELFTESTS if expected]


@pytest.mark.parametrize("name", [name for name, _ in SELFTESTS])
def test_selftest(name):
    _C.simt_selftest(name, False)


@pytest.mark.parametrize("name,expected", FAULTS, ids=[name for name, _ in FAULTS])
def test_stopped_kernel_raises_runtime_error(name, expected):
    """A kernel the emulator stops (deadlock, misused collective, exception) is a RuntimeError naming
    the kernel and block, never an abort or a hang."""
    with pytest.raises(RuntimeError, match=r"SIMT emulator: kernel '\w+' block \(0,0,0\): .*" + re.escape(expected)):
        _C.simt_selftest(name, True)


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
