"""What the numbers were measured on: library versions, CPU, and (through NVML) the GPU. Part of the
package (the `lavin-fast bench` report uses it; an installed package has no bench/ folder); bench/ reads it too.

Everything here is best effort: a missing NVML library or GPU is recorded as such, never an error,
so the same suite runs on this CPU-only machine and on a GPU box.
"""

import os
import platform

import torch


def cpu_model():
    """The CPU's marketing name ("AMD EPYC", "Intel(R) Xeon(R) ..."); platform.processor() is often
    just "x86_64" on Linux, so /proc/cpuinfo comes first."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def software_info():
    import lavin_fast

    return {
        "torch_version": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "lavin_fast_version": lavin_fast.__version__,
        "lavin_fast_cpu_isa": lavin_fast._C.cpu_isa(),
        "lavin_fast_cuda_compiled": bool(lavin_fast._C.cuda_compiled()),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "cpu_count": os.cpu_count(),
        "cpu_model": cpu_model(),
    }


def _nvml():
    """The initialised pynvml module, or (None, reason)."""
    try:
        import pynvml
    except ImportError as e:
        return None, f"nvidia-ml-py not installed ({e})"
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as e:
        return None, f"NVML unavailable ({e})"
    return pynvml, None


def _nvml_handle(nvml, index):
    """NVML numbers GPUs physically while CUDA_VISIBLE_DEVICES renumbers them for torch, so match by
    UUID and fall back to the index only when torch does not report one."""
    try:
        uuid = str(torch.cuda.get_device_properties(index).uuid)
        return nvml.nvmlDeviceGetHandleByUUID("GPU-" + uuid)
    except Exception:
        return nvml.nvmlDeviceGetHandleByIndex(index)


def _text(v):
    return v.decode() if isinstance(v, bytes) else v


def gpu_clocks(nvml, handle):
    """Current clocks in MHz: they drop under thermal or power limits, so each benchmark records
    them after its timed loop."""
    return {
        "sm_clock_mhz": nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM),
        "mem_clock_mhz": nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_MEM),
    }


def gpu_info(device):
    """Name, clocks, memory and driver of the GPU the suite runs on (device "cuda[:i]"), or a
    reason why there is none."""
    if not str(device).startswith("cuda"):
        return {"gpu": None, "gpu_note": "CPU run"}
    nvml, reason = _nvml()
    index = torch.device(device).index or 0
    info = {"gpu": torch.cuda.get_device_name(index)}
    if nvml is None:
        info["gpu_note"] = reason
        return info
    try:
        h = _nvml_handle(nvml, index)
        mem = nvml.nvmlDeviceGetMemoryInfo(h)
        info.update({
            "gpu": _text(nvml.nvmlDeviceGetName(h)),
            "gpu_driver": _text(nvml.nvmlSystemGetDriverVersion()),
            "gpu_memory_total_bytes": int(mem.total),
            "gpu_sm_clock_max_mhz": nvml.nvmlDeviceGetMaxClockInfo(h, nvml.NVML_CLOCK_SM),
            "gpu_mem_clock_max_mhz": nvml.nvmlDeviceGetMaxClockInfo(h, nvml.NVML_CLOCK_MEM),
            **{f"gpu_{k}": v for k, v in gpu_clocks(nvml, h).items()},
        })
    except nvml.NVMLError as e:
        info["gpu_note"] = f"NVML query failed ({e})"
    return info


class ClockProbe:
    """Reads the GPU's current clocks for one device; a no-op on CPU or without NVML."""

    def __init__(self, device):
        self._nvml, self._handle = None, None
        if str(device).startswith("cuda"):
            nvml, _ = _nvml()
            if nvml is not None:
                try:
                    self._handle = _nvml_handle(nvml, torch.device(device).index or 0)
                    self._nvml = nvml
                except nvml.NVMLError:
                    pass

    def read(self):
        if self._nvml is None:
            return {}
        try:
            return gpu_clocks(self._nvml, self._handle)
        except self._nvml.NVMLError:
            return {}
