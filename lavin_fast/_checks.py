"""Argument checks of the public functions, stated once for every op.

Each raises a one-line error "<fn>: argument '<name>' must ..., got ..." (fn: the function the caller
called, "lavin_fast.rms_norm").
"""

import operator

INT32_LIMIT = 2**31  # sizes and offsets are int32 in the kernels


def as_count(fn, name, v):
    """v (an int, or a 0-d integer tensor) as an int >= 0. name as the message shows it ("'T'")."""
    try:
        n = operator.index(v)
    except TypeError:
        raise TypeError(f"{fn}: argument {name} must be an integer, got {type(v).__name__}") from None
    if n < 0:
        raise ValueError(f"{fn}: argument {name} must be >= 0, got {n}")
    return n
