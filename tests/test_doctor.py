"""`lavin-fast doctor`: the CUDA target / compute capability rule, the report against fake GPUs and build
records (this machine has no GPU), the exit status, and the run without the compiled extension."""

import json
import os
import runpy
import subprocess
import sys
import types
import warnings

import pytest
import torch

from lavin_fast import doctor
from lavin_fast.cli import main
from tests.helpers import WITHOUT_EXTENSION_PRELUDE

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (target, compute capability, runs)
CAN_RUN = [
    ("sm_80", (8, 0), True),
    ("sm_80", (8, 6), True),       # SASS: same major, newer minor
    ("sm_80", (8, 9), True),
    ("sm_86", (8, 0), False),      # ... not an older minor
    ("sm_80", (9, 0), False),      # ... nor another major
    ("sm_90", (9, 0), True),
    ("sm_90", (10, 0), False),
    ("sm_90", (12, 0), False),
    ("sm_100", (10, 3), True),
    ("sm_103", (10, 0), False),
    ("sm_120", (12, 1), True),
    ("sm_120", (10, 0), False),
    ("compute_80", (9, 0), True),  # PTX: JIT-compiled for any equal or newer GPU
    ("compute_90", (12, 0), True),
    ("compute_90", (9, 0), True),
    ("compute_90", (8, 6), False),
    ("sm_90a", (9, 0), True),      # arch-specific: exactly that version
    ("sm_90a", (10, 0), False),
    ("sm_100a", (10, 3), False),
    ("compute_90a", (9, 0), True),
    ("compute_90a", (10, 0), False),
    ("sm_100f", (10, 3), True),    # family: as SASS
    ("sm_100f", (12, 0), False),
]


@pytest.mark.parametrize("target,capability,runs", CAN_RUN)
def test_can_run(target, capability, runs):
    assert doctor.can_run(target, capability) is runs


@pytest.mark.parametrize("targets,capability,expected", [
    (["sm_80", "sm_90", "compute_90"], (9, 0), "sm_90"),       # SASS before PTX
    (["sm_80", "sm_90", "compute_90"], (12, 0), "compute_90"),  # only the PTX: JIT
    (["sm_80", "sm_90"], (12, 0), None),
    (["sm_80", "sm_86"], (8, 9), "sm_86"),                      # the newest that runs
    (["sm_80", "sm_90"], (8, 6), "sm_80"),
    (["sm_90", "sm_90a"], (9, 0), "sm_90a"),
    (["sm_90a"], (9, 1), None),
    ([], (9, 0), None),
])
def test_runnable_target(targets, capability, expected):
    assert doctor.runnable_target(targets, capability) == expected


@pytest.mark.parametrize("name", ["sm90", "sm_9", "gfx90a", "sm_90x", "compute_", "ptx_90"])
def test_parse_target_rejects(name):
    with pytest.raises(ValueError, match="not a CUDA target"):
        doctor.parse_target(name)


def test_targets_from_gencode():
    # torch's cpp_extension for TORCH_CUDA_ARCH_LIST="8.0;9.0+PTX;9.0a", and nvcc's bracket form
    flags = ["-gencode=arch=compute_80,code=sm_80", "-gencode=arch=compute_90,code=compute_90",
             "-gencode=arch=compute_90,code=sm_90", "-gencode=arch=compute_90a,code=sm_90a"]
    assert doctor.targets_from_gencode(flags) == ["sm_80", "sm_90", "sm_90a", "compute_90"]
    assert doctor.targets_from_gencode(["-gencode", "arch=compute_100,code=[sm_100,compute_100]"]) == [
        "sm_100", "compute_100"]


def _gpu(capability, name="Fake GPU", index=0):
    return {"index": index, "name": name, "capability": capability, "driver": None, "memory_total_bytes": None}


TORCH_TARGETS = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]


def test_check_gpu():
    built = ["sm_80", "sm_90"]
    gpu = _gpu("9.0")
    assert doctor.check_gpu(gpu, built, TORCH_TARGETS, "8.0;9.0") == ([], [])
    assert gpu["lavin_fast_runs"] == "sm_90" and gpu["torch_runs"] == "sm_90"

    gpu = _gpu("12.0", "Fake Blackwell")
    problems, warns = doctor.check_gpu(gpu, built, TORCH_TARGETS, "8.0;9.0")
    assert gpu["lavin_fast_runs"] is None and not warns
    assert len(problems) == 1 and "GPU 0 (Fake Blackwell, compute capability 12.0)" in problems[0]
    assert 'TORCH_CUDA_ARCH_LIST="8.0;9.0;12.0"' in problems[0] and "sm_80 sm_90" in problems[0]

    gpu = _gpu("12.0")
    problems, warns = doctor.check_gpu(gpu, ["sm_80", "sm_90", "compute_90"], TORCH_TARGETS, "8.0;9.0+PTX")
    assert not problems and gpu["lavin_fast_runs"] == "compute_90"
    assert len(warns) == 1 and "JIT" in warns[0] and "TORCH_CUDA_ARCH_LIST" in warns[0]

    gpu = _gpu("7.0", "Fake Volta")  # older than the kernels' cp.async / bf16 mma: no build helps
    problems, _ = doctor.check_gpu(gpu, ["sm_70", "sm_80"], TORCH_TARGETS, "7.0;8.0")
    assert [p for p in problems if "8.0 or newer" in p] and gpu["lavin_fast_runs"] is None

    gpu = _gpu("9.0")  # a build that did not record its architectures
    assert doctor.check_gpu(gpu, None, TORCH_TARGETS) == ([], [])
    assert gpu["lavin_fast_runs"] == "unknown"

    gpu = _gpu("9.0")  # a torch that does not list its architectures
    assert doctor.check_gpu(gpu, built, [], "8.0;9.0") == ([], [])
    assert gpu["torch_runs"] == "unknown"

    gpu = _gpu("8.9")  # torch itself cannot run on it
    problems, _ = doctor.check_gpu(gpu, ["sm_80", "sm_89"], ["sm_90"], "8.0;8.9")
    assert len(problems) == 1 and "torch" in problems[0] and gpu["torch_runs"] is None


def test_no_visible_gpu_says_why(monkeypatch):
    def unavailable():
        warnings.warn("CUDA initialization: The NVIDIA driver on your system is too old\n(found version 1)")
        return False
    monkeypatch.setattr(torch.cuda, "is_available", unavailable)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    gpus, note = doctor.visible_gpus()
    assert gpus == [] and note.startswith("no CUDA device visible (UserWarning: CUDA initialization: The NVIDIA "
                                          "driver on your system is too old (found version 1)")
    assert note.endswith("; CUDA_VISIBLE_DEVICES='')")
    monkeypatch.setattr(torch.version, "cuda", None)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert doctor.visible_gpus() == ([], "no CUDA device visible (torch is a CPU-only build)")


def test_reads_the_record_setup_py_writes(monkeypatch):
    """setup.py's build_info_text() (run without building: setup() is stubbed) read back by doctor."""
    import setuptools
    monkeypatch.setattr(setuptools, "setup", lambda **kw: None)
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "8.0;9.0+PTX")
    monkeypatch.chdir(ROOT)
    text = runpy.run_path(os.path.join(ROOT, "setup.py"))["build_info_text"]()
    module = types.ModuleType("lavin_fast._build_info")
    exec(text, module.__dict__)
    monkeypatch.setitem(sys.modules, "lavin_fast._build_info", module)
    record = doctor.build_record()
    assert record["TORCH_VERSION"] == str(torch.__version__)
    if record["CUDA_COMPILED"]:  # nvcc and a CUDA torch here
        assert record["TORCH_CUDA_ARCH_LIST"] == "8.0;9.0+PTX"
        assert doctor.targets_from_gencode(record["CUDA_ARCH_FLAGS"]) == ["sm_80", "sm_90", "compute_90"]
    else:
        assert record["CUDA_ARCH_FLAGS"] is None


RECORD_80_90 = {"TORCH_VERSION": str(torch.__version__), "TORCH_CUDA": "13.0", "CUDA_COMPILED": True,
                "TORCH_CUDA_ARCH_LIST": "8.0;9.0",
                "CUDA_ARCH_FLAGS": ["-gencode=arch=compute_80,code=sm_80", "-gencode=arch=compute_90,code=sm_90"]}


@pytest.fixture
def fake_machine(monkeypatch):
    """collect() on GPUs and a build record of our choosing; returns the devices the kernel check ran on."""
    probed = []

    def setup(gpus, record=RECORD_80_90, probe_error=None, cuda_compiled=True):
        monkeypatch.setattr(doctor, "visible_gpus", lambda: (gpus, None if gpus else "no CUDA device visible"))
        monkeypatch.setattr(doctor, "build_record", lambda: record)
        monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: list(TORCH_TARGETS))
        monkeypatch.setattr(doctor, "probe", lambda device: probed.append(device) or probe_error)
        real = doctor.extension_info
        monkeypatch.setattr(doctor, "extension_info", lambda: {**real(), "cuda_compiled": cuda_compiled})
        return probed
    return setup


def _run(capsys, *args):
    rc = main(["doctor", *args])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def test_no_gpu(fake_machine, capsys):
    probed = fake_machine([])
    rc, out, err = _run(capsys)
    assert rc == 0 and err == "" and not probed
    assert "no CUDA device visible" in out and "no problems found" in out
    assert "TORCH_CUDA_ARCH_LIST=8.0;9.0" in out and "sm_80 sm_90" in out


def test_gpu_the_build_runs_on(fake_machine, capsys):
    probed = fake_machine([_gpu("9.0", "Fake H100")])
    rc, out, err = _run(capsys)
    assert rc == 0 and err == "" and probed == ["cuda:0"]
    assert "Fake H100, compute capability 9.0: lavin_fast runs sm_90, torch runs sm_90, kernel check: ok" in out


def test_gpu_the_build_cannot_run_on(fake_machine, capsys):
    probed = fake_machine([_gpu("9.0", "Fake H100"), _gpu("12.0", "Fake Blackwell", index=1)])
    rc, out, err = _run(capsys)
    assert rc == 1 and probed == ["cuda:0"]  # no kernel check where the targets already say no
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lavin-fast doctor: error: GPU 1 (Fake Blackwell")
    assert 'TORCH_CUDA_ARCH_LIST="8.0;9.0;12.0"' in lines[0]
    assert "1 problem" in out


def test_failed_kernel_check(fake_machine, capsys):
    fake_machine([_gpu("9.0")], probe_error="RuntimeError: no kernel image is available for execution")
    rc, _, err = _run(capsys)
    assert rc == 1 and "a lavin_fast kernel failed on it: RuntimeError: no kernel image" in err


def test_unknown_architectures(fake_machine, capsys):
    """A build from before setup.py recorded its architectures: a warning, the kernel check decides."""
    probed = fake_machine([_gpu("9.0")], record=None)
    rc, out, err = _run(capsys)
    assert rc == 0 and err == "" and probed == ["cuda:0"]
    assert "CUDA kernels for unknown architectures" in out
    assert "lavin_fast runs unknown" in out and "warning: the CUDA architectures of this build are unknown" in out


def test_cpu_only_build_with_a_gpu(fake_machine, capsys):
    probed = fake_machine([_gpu("9.0")], record={**RECORD_80_90, "CUDA_COMPILED": False, "CUDA_ARCH_FLAGS": None},
                          cuda_compiled=False)
    rc, out, err = _run(capsys)
    assert rc == 1 and not probed and "built without CUDA kernels" in err
    assert "CPU kernels only" in out


def test_torch_version_mismatch_warns(fake_machine, capsys):
    fake_machine([], record={**RECORD_80_90, "TORCH_VERSION": "2.0.0"})
    rc, out, _ = _run(capsys)
    assert rc == 0 and "warning: the extension was built against torch 2.0.0" in out


def test_json(fake_machine, capsys):
    fake_machine([_gpu("12.0")])
    rc, out, err = _run(capsys, "--json")
    report = json.loads(out)
    assert rc == 1 and len(report["problems"]) == 1 and report["problems"][0] in err
    assert report["extension"]["cuda_targets"] == ["sm_80", "sm_90"]
    assert report["gpus"][0]["lavin_fast_runs"] is None and report["gpus"][0]["torch_runs"] == "sm_120"
    assert report["cpu"]["isa"] in ("DEFAULT", "AVX2", "AVX512")
    assert report["ops"]["rms_norm"][0] == "cpu" and "simt" in report["ops"]["rms_norm"]


# Ops whose CPU registration has no path to an emulated CUDA kernel (csrc/linear: oneDNN / F.linear;
# causal_conv3d's backward is the ATen composite on every backend).
NO_SIMT = {"causal_conv3d_backward", "linear", "linear_backward"}


def test_every_op_is_classified_for_simt():
    """A new op must be added to doctor.SIMT_OPS or to NO_SIMT above, so the simt column stays true."""
    ops = doctor.op_backends()
    assert ops and set(ops) == doctor.SIMT_OPS | NO_SIMT
    assert not doctor.SIMT_OPS & NO_SIMT
    for name, backends in ops.items():
        assert "cpu" in backends, name
        assert ("simt" in backends) == (name in doctor.SIMT_OPS), name


def test_probe_runs_a_kernel():
    assert doctor.probe("cpu") is None
    why = doctor.probe("meta")  # the fake kernel gives no numbers: the failure is one line, not a raise
    assert isinstance(why, str) and "\n" not in why


# Runs `lavin-fast doctor` as if lavin_fast._C had never been built.
WITHOUT_EXTENSION = WITHOUT_EXTENSION_PRELUDE + r"""
from lavin_fast.cli import main
sys.exit(main(["doctor"]))
"""


def test_missing_extension_exits_1_with_one_line():
    r = subprocess.run([sys.executable, "-c", WITHOUT_EXTENSION], cwd=ROOT, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=ROOT), timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("lavin-fast doctor: error:")]
    assert len(errors) == 1 and "lavin_fast._C does not import" in errors[0], r.stderr
    assert "pip install --no-build-isolation -e ." in errors[0] and "Traceback" not in r.stderr
    assert "ops         unknown" in r.stdout
