"""Loads the compiled extension lavin_fast._C, whose import registers the native operators."""

_BUILD_HINT = (
    "lavin_fast's compiled extension (lavin_fast._C) is not built. Build it from the repository with\n"
    "    pip install --no-build-isolation -e .\n"
    "(or run scripts/test, which sets up a virtualenv and builds it). Set LAVIN_FAST_CUDA=0 to skip the\n"
    "CUDA kernels while iterating on CPU code."
)


class ExtensionUnavailable(ImportError):
    """lavin_fast._C is not built or does not import; the message says how to build it."""


def load():
    """Returns the extension module, or raises ExtensionUnavailable (an ImportError) saying how to build it."""
    try:
        from lavin_fast import _C
    except ImportError as e:
        raise ExtensionUnavailable(f"{_BUILD_HINT}\n(import failed: {e})") from e
    return _C
