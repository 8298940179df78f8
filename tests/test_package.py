"""Package-level behaviour: the error a user sees without the compiled extension, and the build
facts the package reports."""

import os
import subprocess
import sys

from lavin_fast import _C
from tests.helpers import WITHOUT_EXTENSION_PRELUDE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Imports lavin_fast as if lavin_fast._C had never been built.
WITHOUT_EXTENSION = WITHOUT_EXTENSION_PRELUDE + r"""
try:
    from lavin_fast import rms_norm
except ImportError as e:
    print(e)
else:
    print("imported")
"""


def test_missing_extension_says_how_to_build_it():
    r = subprocess.run([sys.executable, "-c", WITHOUT_EXTENSION], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
    assert r.returncode == 0, r.stderr
    assert "pip install --no-build-isolation -e ." in r.stdout, r.stdout
    assert "lavin_fast._C" in r.stdout


def test_build_facts():
    assert _C.cpu_isa() in ("DEFAULT", "AVX2", "AVX512")
    assert isinstance(_C.cuda_compiled(), bool)
