"""The simt backend switch: run the ops' CUDA kernels under the host SIMT emulator, on CPU tensors.

    with lavin_fast.simt.enabled(schedule="reverse"):
        y = lavin_fast.rms_norm(x, w)      # x on the CPU: the CUDA kernel, emulated

The schedule is the order in which the emulated threads run between barriers: "forward", "reverse"
or "random" (shuffled with `seed`). A race-free kernel gives bit-identical results under all three.
The switch is per OS thread: a block changes only the calling thread's ops, so threads entering and
leaving blocks never switch each other (or leave the switch on for another thread). Autograd runs
the backward of CPU tensors on the thread that calls .backward(): a backward called inside the block
runs the emulated kernels; one called after the block has exited (or on another thread) runs the CPU
kernels, although the forward was emulated. See docs/simt.md.
"""

import contextlib

from lavin_fast._native import load

SCHEDULES = ("forward", "reverse", "random")

_C = load()


@contextlib.contextmanager
def enabled(schedule="forward", seed=0):
    """CPU ops called on this thread run the emulated CUDA kernels inside the block (other threads are
    unaffected); this thread's previous setting is restored after."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    previous = _C.simt_mode()
    _C.simt_set_mode(True, SCHEDULES.index(schedule), seed)
    try:
        yield
    finally:
        _C.simt_set_mode(*previous)


def is_enabled():
    """Whether this thread's CPU ops run under the emulator."""
    return _C.simt_mode()[0]
