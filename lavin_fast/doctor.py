"""`lavin-fast doctor`: what this installation runs on, and whether it can.

Reports the torch and CUDA versions, the compiled extension (lavin_fast._C) and the CUDA architectures
it was built for against the compute capability of each visible GPU, the instruction set the CPU
kernels use, and the backends (cpu, cuda, simt) of every op. Exit status 1, with one line per reason,
when the extension does not import or cannot run on a visible GPU; 0 otherwise (no GPU included).
"""

import importlib
import json
import os
import platform
import re
import sys
import warnings

import torch

from lavin_fast.machine import cpu_model, gpu_info

# The CUDA kernels use cp.async and bf16/fp16 tensor-core mma (csrc/simt/cp_async.cuh, tensor_core.cuh).
MIN_CAPABILITY = (8, 0)

# Ops whose CPU registration runs the CUDA kernel under the host SIMT emulator while
# lavin_fast.simt.enabled() is on (csrc/<op>/*_register.cpp). The switch is read inside the CPU
# kernels, not through a dispatch key, so the dispatcher cannot tell; tests/test_doctor.py fails when a
# registered op is in neither this set nor its list of ops without a simt path.
SIMT_OPS = frozenset({
    "causal_conv3d",
    "gated_rms_residual", "gated_rms_residual_backward",
    "qk_norm_rope", "qk_norm_rope_backward",
    "rms_norm", "rms_norm_backward",
    "rms_norm_modulate", "rms_norm_modulate_backward",
    "varlen_attention", "varlen_attention_backward",
})

REBUILD = "pip install --no-build-isolation -e ."

# ---- CUDA targets and compute capabilities ------------------------------------------------------------

_TARGET = re.compile(r"(sm|compute)_(\d+)(\d)([af]?)")


def parse_target(name):
    """An nvcc target: "sm_90" (SASS), "compute_90" (PTX), "sm_90a" (arch-specific), "sm_100f" (family)
    -> (kind, (major, minor), suffix), e.g. ("sm", (9, 0), "a")."""
    m = _TARGET.fullmatch(name)
    if not m:
        raise ValueError(f"not a CUDA target (sm_XY or compute_XY): {name!r}")
    return m.group(1), (int(m.group(2)), int(m.group(3))), m.group(4)


def can_run(target, capability):
    """Whether a GPU of compute capability (major, minor) runs code built for `target`. SASS runs on the
    same major version at an equal or newer minor; PTX is JIT-compiled for any equal or newer GPU;
    arch-specific targets (sm_90a) run on exactly that version, family ones (sm_100f) as SASS does."""
    kind, arch, suffix = parse_target(target)
    capability = tuple(capability)
    if suffix == "a":
        return arch == capability
    if kind == "sm" or suffix == "f":
        return arch[0] == capability[0] and arch[1] <= capability[1]
    return arch <= capability


def runnable_target(targets, capability):
    """The target a GPU of `capability` runs: the newest SASS it can run, else the newest PTX (which the
    driver JIT-compiles at first use), else None."""
    ok = [t for t in targets if can_run(t, capability)]
    pick = [t for t in ok if t.startswith("sm_")] or ok

    def newest(t):
        _, arch, suffix = parse_target(t)
        return arch, suffix == "a"
    return max(pick, key=newest) if pick else None


def targets_from_gencode(flags):
    """The targets of nvcc -gencode flags ("-gencode=arch=compute_80,code=sm_80", "code=[sm_90,compute_90]"),
    SASS before PTX, oldest first."""
    targets = set()
    for flag in flags:
        m = re.search(r"(?<!\w)code=\[?([\w,]+)\]?", flag)  # not the "code=" of "-gencode="
        if m:
            targets.update(t for t in m.group(1).split(",") if _TARGET.fullmatch(t))
    return sorted(targets, key=lambda t: (t.startswith("compute_"), parse_target(t)[1], t))


def _capability_text(capability):
    return f"{capability[0]}.{capability[1]}"


def check_gpu(gpu, ext_targets, torch_targets, arch_list=None):
    """What the GPU (a dict with index, name and capability "X.Y") runs: adds "lavin_fast_runs" and
    "torch_runs" to it (a target, None, or "unknown" where the targets are None / empty: a build that
    did not record them), and returns (problems, warnings), one line each."""
    cap = tuple(int(v) for v in gpu["capability"].split("."))
    cap_text = _capability_text(cap)
    label = f"GPU {gpu['index']} ({gpu['name']}, compute capability {cap_text})"
    problems, warns = [], []
    gpu["torch_runs"] = runnable_target(torch_targets, cap) if torch_targets else "unknown"
    if torch_targets and gpu["torch_runs"] is None:
        problems.append(f"{label}: torch {torch.__version__} cannot run on it (built for {' '.join(torch_targets)}):"
                        " install a torch build for this GPU")
    if cap < MIN_CAPABILITY:
        gpu["lavin_fast_runs"] = None
        problems.append(f"{label}: lavin_fast's CUDA kernels need compute capability "
                        f"{_capability_text(MIN_CAPABILITY)} or newer (cp.async, bf16 tensor cores)")
    elif ext_targets is None:
        gpu["lavin_fast_runs"] = "unknown"
    elif not ext_targets:
        gpu["lavin_fast_runs"] = None  # a CPU-only build: collect() reports it once
    else:
        gpu["lavin_fast_runs"] = runnable_target(ext_targets, cap)
        wanted = f"{arch_list};{cap_text}" if arch_list else cap_text
        fix = f'rebuild with {cap_text} in TORCH_CUDA_ARCH_LIST (TORCH_CUDA_ARCH_LIST="{wanted}" {REBUILD})'
        if gpu["lavin_fast_runs"] is None:
            problems.append(f"{label} cannot run lavin_fast's CUDA kernels, built for {' '.join(ext_targets)}: {fix}")
        elif gpu["lavin_fast_runs"].startswith("compute_"):
            warns.append(f"{label} runs lavin_fast's kernels only by JIT-compiling {gpu['lavin_fast_runs']} PTX "
                         f"at first use (slow start, code tuned for an older GPU): {fix}")
    return problems, warns


# ---- what is installed ---------------------------------------------------------------------------------

def _one_line(e):
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
    return f"{type(e).__name__}: {text}" if isinstance(e, BaseException) else text


def build_record():
    """What setup.py recorded about the build (lavin_fast/_build_info.py, written next to the extension),
    or None for a build made before it recorded it."""
    try:
        info = importlib.import_module("lavin_fast._build_info")
    except ImportError:
        return None
    keys = ("TORCH_VERSION", "TORCH_CUDA", "CUDA_COMPILED", "TORCH_CUDA_ARCH_LIST", "CUDA_ARCH_FLAGS")
    return {k: getattr(info, k, None) for k in keys}


def extension_info():
    """The extension as it loads: {"loaded": False, "error": why} or its facts."""
    from lavin_fast._native import load
    try:
        ext = load()
    except ImportError as e:  # load() adds how to build it; the cause is the one line that says why
        return {"loaded": False, "error": _one_line(e.__cause__ or e)}
    return {"loaded": True, "error": None, "path": ext.__file__, "cuda_compiled": bool(ext.cuda_compiled()),
            "cpu_isa": ext.cpu_isa()}


def op_backends():
    """{op: its backends among "cpu", "cuda", "simt"} of the registered lavin_fast ops, from the
    dispatcher (simt: SIMT_OPS); None when this torch cannot list ops."""
    try:
        names = torch._C._dispatch_get_all_op_names()
        has = torch._C._dispatch_has_kernel_for_dispatch_key
    except AttributeError:
        return None
    ops = {}
    for qualname in sorted(n for n in names if n.startswith("lavin_fast::")):
        name = qualname.split("::", 1)[1]
        backends = [b for b, key in (("cpu", "CPU"), ("cuda", "CUDA")) if has(qualname, key)]
        if "cpu" in backends and name in SIMT_OPS:
            backends.append("simt")
        ops[name] = backends
    return ops


def visible_gpus():
    """([{index, name, capability "X.Y", driver, memory_total_bytes}], None), or ([], why there is none)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    why = [f"CUDA_VISIBLE_DEVICES={visible!r}"] if visible is not None else []
    available = False
    if torch.version.cuda is None:
        why.insert(0, "torch is a CPU-only build")
    else:
        with warnings.catch_warnings(record=True) as caught:  # e.g. "the NVIDIA driver ... is too old"
            warnings.simplefilter("always")
            available = torch.cuda.is_available()
        why = [_one_line(w.message) for w in caught] + why
    if not available:
        return [], "no CUDA device visible" + (f" ({'; '.join(why)})" if why else "")
    gpus = []
    for i in range(torch.cuda.device_count()):
        nvml = gpu_info(f"cuda:{i}")  # driver and memory, through NVML where nvidia-ml-py is installed
        gpus.append({"index": i, "name": torch.cuda.get_device_name(i),
                     "capability": _capability_text(torch.cuda.get_device_capability(i)),
                     "driver": nvml.get("gpu_driver"), "memory_total_bytes": nvml.get("gpu_memory_total_bytes")})
    return gpus, None


def probe(device):
    """None if a lavin_fast kernel (rms_norm) runs on `device` and gives the right numbers, else why not
    (one line): the check of the build that its recorded architectures cannot replace (a driver too old
    for the PTX, a build without a record)."""
    try:
        x = torch.randn(4, 64, device=device)
        w = torch.rand(64, device=device) + 0.5
        y, _ = torch.ops.lavin_fast.rms_norm(x, w, 1e-6)
        expected = x * torch.rsqrt(x.square().mean(-1, keepdim=True) + 1e-6) * w
        err = (y - expected).abs().max().item()
    except Exception as e:  # a diagnosis, not a computation: whatever fails is the answer
        return _one_line(e)
    return None if err <= 1e-4 else f"rms_norm gave wrong results on {device} (max abs error {err:.3g})"


# ---- the report ----------------------------------------------------------------------------------------

def collect():
    """The doctor's report as a JSON-serialisable dict; report["problems"] (one line each) is empty
    exactly when this installation can run (exit status 0)."""
    import lavin_fast

    problems, warns = [], []
    ext = extension_info()
    record = build_record()
    torch_version = str(torch.__version__)
    built_against = record and record["TORCH_VERSION"]
    if not ext["loaded"]:
        hint = f"; it was built against torch {built_against}, this is {torch_version}" if (
            built_against and built_against != torch_version) else ""
        problems.append(f"the compiled extension lavin_fast._C does not import ({ext['error']}){hint}: "
                        f"build it with `{REBUILD}` from the repository")
    elif built_against and built_against != torch_version:
        warns.append(f"the extension was built against torch {built_against}, this is torch {torch_version}: "
                     f"rebuild it (`{REBUILD}`)")

    gpus, gpu_note = visible_gpus()
    targets, arch_list = None, None  # None: unknown
    if ext["loaded"]:
        if not ext["cuda_compiled"]:
            targets = []
        elif record is None or record["CUDA_ARCH_FLAGS"] is None or not record["CUDA_COMPILED"]:
            if gpus:  # record["CUDA_COMPILED"] false: the record is from another build
                warns.append("the CUDA architectures of this build are unknown (no lavin_fast/_build_info.py, "
                             "which setup.py writes with each build, or one from another build): rebuild "
                             f"(`{REBUILD}`) to have them checked against the GPUs")
        else:
            targets, arch_list = targets_from_gencode(record["CUDA_ARCH_FLAGS"]), record["TORCH_CUDA_ARCH_LIST"]

    torch_targets = torch.cuda.get_arch_list() if torch.version.cuda else []
    if gpus and ext["loaded"] and not ext["cuda_compiled"]:
        problems.append(f"{len(gpus)} GPU(s) visible, but lavin_fast._C was built without CUDA kernels (no nvcc "
                        f"or LAVIN_FAST_CUDA=0 at build time): rebuild with the CUDA toolkit (`{REBUILD}`)")
    for gpu in gpus:
        p, w = check_gpu(gpu, targets, torch_targets, arch_list)
        problems += p
        warns += w
        gpu["probe"] = None
        if ext["loaded"] and ext["cuda_compiled"] and not p:
            gpu["probe"] = probe(f"cuda:{gpu['index']}") or "ok"
            if gpu["probe"] != "ok":
                problems.append(f"GPU {gpu['index']} ({gpu['name']}): a lavin_fast kernel failed on it: {gpu['probe']}")

    return {
        "lavin_fast": {"version": lavin_fast.__version__,
                       "path": os.path.dirname(os.path.abspath(lavin_fast.__file__))},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": {"version": torch_version, "cuda": torch.version.cuda, "cuda_targets": torch_targets},
        "extension": {**ext, "cuda_targets": targets, "torch_cuda_arch_list": arch_list, "build_record": record},
        "cpu": {"model": cpu_model(), "isa": ext.get("cpu_isa"), "aten_isa": torch.backends.cpu.get_cpu_capability(),
                "aten_cpu_capability_env": os.environ.get("ATEN_CPU_CAPABILITY")},
        "gpus": gpus,
        "gpu_note": gpu_note,
        "ops": op_backends() if ext["loaded"] else None,
        "warnings": warns,
        "problems": problems,
    }


def format_report(r):
    """The report as the lines `lavin-fast doctor` prints (problems excepted: they go to stderr)."""
    ext = r["extension"]
    lines = [f"lavin_fast  {r['lavin_fast']['version']} ({r['lavin_fast']['path']})",
             f"python      {r['python']} ({r['platform']})",
             f"torch       {r['torch']['version']}, CUDA {r['torch']['cuda'] or 'none (CPU-only build)'}"
             + (f", built for {' '.join(r['torch']['cuda_targets'])}" if r["torch"]["cuda_targets"] else "")]
    if not ext["loaded"]:
        lines.append(f"extension   lavin_fast._C does not import: {ext['error']}")
    elif not ext["cuda_compiled"]:
        lines.append("extension   lavin_fast._C: CPU kernels only (built without CUDA)")
    elif ext["cuda_targets"] is None:
        lines.append("extension   lavin_fast._C: CUDA kernels for unknown architectures (not recorded by its build)")
    else:
        lines.append(f"extension   lavin_fast._C: CUDA kernels for {' '.join(ext['cuda_targets'])} "
                     f"(TORCH_CUDA_ARCH_LIST={ext['torch_cuda_arch_list']})")
    cpu = r["cpu"]
    isa = f"kernels use {cpu['isa']} (ATen: {cpu['aten_isa']})" if cpu["isa"] else f"ATen uses {cpu['aten_isa']}"
    env = f", ATEN_CPU_CAPABILITY={cpu['aten_cpu_capability_env']}" if cpu["aten_cpu_capability_env"] else ""
    lines.append(f"CPU         {cpu['model']}: {isa}{env}")
    if not r["gpus"]:
        lines.append(f"GPU         {r['gpu_note']}")
    for g in r["gpus"]:
        driver = f", driver {g['driver']}" if g.get("driver") else ""
        runs = f"lavin_fast runs {g['lavin_fast_runs'] or 'nothing'}, torch runs {g['torch_runs'] or 'nothing'}"
        probe_text = f", kernel check: {g['probe']}" if g["probe"] else ""
        lines.append(f"GPU {g['index']:<7} {g['name']}, compute capability {g['capability']}{driver}: "
                     f"{runs}{probe_text}")
    if r["ops"] is None:
        lines.append("ops         unknown (the extension is not loaded)")
    else:
        width = max((len(name) for name in r["ops"]), default=0)
        lines.append("ops         backends")
        lines += [f"  {name:<{width}}  {' '.join(b)}" for name, b in r["ops"].items()]
    lines += [f"warning: {w}" for w in r["warnings"]]
    n = len(r["problems"])
    lines.append("doctor: no problems found" if not n else f"doctor: {n} problem{'s' * (n > 1)} (on stderr)")
    return "\n".join(lines)


def run(args):
    report = collect()
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    for p in report["problems"]:
        print(f"lavin-fast doctor: error: {p}", file=sys.stderr)
    return 1 if report["problems"] else 0


def add_doctor_parser(sub):
    d = sub.add_parser("doctor", help="versions, CUDA architectures vs the visible GPUs, CPU instruction set, "
                                      "backends of each op; exit status 1 if the extension cannot run")
    d.add_argument("--json", action="store_true", help="print the report as JSON")
    d.set_defaults(fn=run)
