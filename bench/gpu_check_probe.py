"""The device probe and the import check of scripts/gpu-check (bench/gpu_check.py), each run as a
subprocess so that CUDA is initialised there and never in the driver; each prints one JSON object.

    python -m bench.gpu_check_probe                 # torch, the device, NVML, the tools and plugins
    python -m bench.gpu_check_probe --import-check  # lavin_fast._C imports with its CUDA kernels (exit 3 if not)
"""

import importlib.util
import json
import os
import platform
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cores():
    """CPUs this process may run on (a container's share, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def probe():
    """The device as torch and NVML see it, as one JSON object on stdout."""
    import torch

    info = {"python": sys.executable, "python_version": platform.python_version(), "torch": torch.__version__,
            "torch_cuda": torch.version.cuda, "cpu_count": cores(),
            "cuda_available": torch.cuda.is_available(),
            "device_count": torch.cuda.device_count() if torch.cuda.is_available() else 0,
            "modules": {m: importlib.util.find_spec(m) is not None
                        for m in ("xdist", "pytest_timeout", "pytest_benchmark", "pynvml", "flash_attn")}}
    from torch.utils import cpp_extension
    info["cuda_home"] = cpp_extension.CUDA_HOME
    sanitizer = shutil.which("compute-sanitizer")
    if sanitizer is None and cpp_extension.CUDA_HOME:
        p = Path(cpp_extension.CUDA_HOME) / "bin" / "compute-sanitizer"
        sanitizer = str(p) if p.exists() else None
    info["compute_sanitizer"] = sanitizer
    if info["device_count"]:
        p = torch.cuda.get_device_properties(0)
        info.update(name=p.name, capability=f"{p.major}.{p.minor}", multiprocessors=p.multi_processor_count,
                    total_memory_bytes=p.total_memory)
        # lavin_fast/machine.py by path: the package's __init__ loads the extension, not built yet.
        spec = importlib.util.spec_from_file_location("lavin_fast_machine", REPO / "lavin_fast" / "machine.py")
        machine = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(machine)
        info.update(machine.gpu_info("cuda:0"))
    print(json.dumps(info))
    return 0


def import_check():
    """lavin_fast imports, with its CUDA kernels; its versions as JSON on stdout."""
    from lavin_fast import machine
    info = machine.software_info()
    print(json.dumps(info))
    return 0 if info["lavin_fast_cuda_compiled"] else 3


if __name__ == "__main__":
    sys.exit(import_check() if sys.argv[1:] == ["--import-check"] else probe())
