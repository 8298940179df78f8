"""`register_fake` for lavin_fast's ops: the fake (meta) kernel, run after a check that every tensor
argument is on one device.

The dispatcher runs an op's Meta kernel, which is the fake kernel, whenever any argument is a meta
tensor, also beside CPU or CUDA tensors. A shape-only kernel would then return uninitialised memory on
the other device, where the native kernels reject mixed devices (check_same_device): the same mix is
an error here, with the same message.
"""

import functools
import inspect

import torch

from lavin_fast._checks import check_device


def _tensors(name, value):
    if isinstance(value, torch.Tensor):
        yield name, value
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _tensors(f"{name}[{i}]", v)


def check_one_device(op, arguments):
    """arguments: name -> value. Raises ValueError naming the first tensor not on the device of the
    first tensor argument."""
    ref_name = ref = None
    for name, value in arguments.items():
        for tname, t in _tensors(name, value):
            if ref is None:
                ref_name, ref = tname, t
            else:
                check_device(op, tname, t, ref, ref_name)


def register_fake(qualname):
    """Decorator: torch.library.register_fake(qualname) of the decorated fake kernel, which first
    checks that its tensor arguments share one device."""
    op = qualname.replace("::", ".")

    def register(fake):
        params = list(inspect.signature(fake).parameters)

        @functools.wraps(fake)
        def checked(*args, **kwargs):
            check_one_device(op, {**dict(zip(params, args)), **kwargs})
            return fake(*args, **kwargs)

        torch.library.register_fake(qualname)(checked)
        return fake

    return register
