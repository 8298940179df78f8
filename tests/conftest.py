import atexit
import hashlib
import os
import shutil
import tempfile

# A fresh inductor cache per test run: the FX-graph cache is keyed by the traced code, not by the
# schemas of lavin_fast's ops, so after a schema change a shared cache replayed the old call.
_INDUCTOR_CACHE = tempfile.mkdtemp(prefix="lavin_fast_inductor_")
os.environ["TORCHINDUCTOR_CACHE_DIR"] = _INDUCTOR_CACHE
atexit.register(shutil.rmtree, _INDUCTOR_CACHE, ignore_errors=True)

import pytest  # noqa: E402
import torch  # noqa: E402

from lavin_fast import _C


@pytest.fixture(autouse=True, scope="session")
def poisoned_outputs():
    """Every kernel output starts as NaN, so an element a kernel forgot to write fails the test."""
    _C.testing.set_poison_outputs(True)
    yield
    _C.testing.set_poison_outputs(False)


@pytest.fixture(autouse=True)
def seed(request):
    """Fresh random inputs per test, reproducible from the test id."""
    s = int(hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:8], 16)
    torch.manual_seed(s)
    return s
