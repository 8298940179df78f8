"""The simt backend switch: run the ops' CUDA kernels under the host SIMT emulator, on CPU tensors.

    with lavin_fast.simt.enabled(schedule="reverse"):
        y = lavin_fast.rms_norm(x, w)      # x on the CPU: the CUDA kernel, emulated

The schedule is the order in which the emulated threads run between barriers: "forward", "reverse"
or "random" (shuffled with `seed`). A race-free kernel gives bit-identical results under all three.
The switch is process-wide (autograd may run the backward on another thread); see docs/simt.md.
"""

import contextlib

from lavin_fast._native import load

SCHEDULES = ("forward", "reverse", "random")

_C = load()


@contextlib.contextmanager
def enabled(schedule="forward", seed=0):
    """CPU ops run the emulated CUDA kernels inside the block; the previous setting is restored after."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    previous = _C.simt_mode()
    _C.simt_set_mode(True, SCHEDULES.index(schedule), seed)
    try:
        yield
    finally:
        _C.simt_set_mode(*previous)


def is_enabled():
    return _C.simt_mode()[0]
