"""Argument checks of the public functions, stated once for every op.

Each raises a one-line error "<fn>: argument '<name>' must ..., got ..." (fn: the function the caller
called, "lavin_fast.rms_norm"). They look at types, dtypes, dimensions, shapes and devices only, so
they trace under torch.compile; the native ops check the same again, and the values (cu_seqlens).
"""

import operator

import torch

FLOATS = (torch.float32, torch.bfloat16, torch.float16)  # the activation dtypes of the kernels
INT32_LIMIT = 2**31  # sizes and offsets are int32 in the kernels


def dtype_name(v):
    """'float32' for a tensor (or a dtype); the type's name for anything else."""
    if isinstance(v, torch.dtype):
        return str(v).removeprefix("torch.")
    return dtype_name(v.dtype) if isinstance(v, torch.Tensor) else type(v).__name__


def fail(fn, cls, msg):
    raise cls(f"{fn}: {msg}")


def check_is_tensor(fn, name, t):
    if not isinstance(t, torch.Tensor):
        fail(fn, TypeError, f"argument '{name}' must be a Tensor, got {type(t).__name__}")


def check_dtype(fn, name, t, dtypes):
    """t has one of `dtypes` (a non-tensor is named by its type)."""
    if not isinstance(t, torch.Tensor) or t.dtype not in dtypes:
        allowed = " or ".join(dtype_name(d) for d in dtypes)
        fail(fn, TypeError, f"argument '{name}' must have dtype {allowed}, got {dtype_name(t)}")


def check_dtype_of(fn, name, t, ref, ref_name):
    if t.dtype != ref.dtype:
        fail(fn, TypeError, f"argument '{name}' must have the dtype of '{ref_name}' ({dtype_name(ref)}), got "
                            f"{dtype_name(t)}")


def check_dim(fn, name, t, dims, layout):
    """t has `dims` dimensions; layout names them ("(total_q, H, D)")."""
    if t.dim() != dims:
        fail(fn, ValueError, f"argument '{name}' must be {dims}-D {layout}, got shape {tuple(t.shape)}")


def check_device(fn, name, t, ref, ref_name):
    """t is on the device of `ref` (the argument named ref_name)."""
    if t.device != ref.device:
        fail(fn, ValueError, f"argument '{name}' must be on {ref.device} (the device of '{ref_name}'), got "
                             f"{t.device}")


def check_shape(fn, name, t, shape, layout):
    """t has `shape`; layout says what it is made of ("(D,) with D = x.shape[-1]")."""
    if tuple(t.shape) != tuple(shape):
        fail(fn, ValueError, f"argument '{name}' must have shape {layout} = {tuple(shape)}, got {tuple(t.shape)}")


def check_tensor(fn, name, t, dtypes=FLOATS, *, dims=None, layout="", like=None):
    """A Tensor of one of `dtypes`; with dims, of that many dimensions; with like=(ref, ref_name), on
    ref's device. Checked in that order."""
    check_is_tensor(fn, name, t)
    check_dtype(fn, name, t, dtypes)
    if dims is not None:
        check_dim(fn, name, t, dims, layout)
    if like is not None:
        check_device(fn, name, t, *like)


def as_count(fn, name, v):
    """v (an int, or a 0-d integer tensor) as an int >= 0. name as the message shows it ("'T'")."""
    try:
        n = operator.index(v)
    except TypeError:
        raise TypeError(f"{fn}: argument {name} must be an integer, got {type(v).__name__}") from None
    if n < 0:
        raise ValueError(f"{fn}: argument {name} must be >= 0, got {n}")
    return n
