"""The installed package stands alone: a wheel built from this checkout and installed (not editable) into
a fresh virtualenv runs `lavin-fast generate --example` and `lavin-fast bench` from another folder, with
the dependencies pip installed there because pyproject declares them, and never imports the
repository's bench/ or tests/.

The wheel reuses the compiled objects under build/temp (setup.py keeps them there), so building it is a
link when the tree was built with the same configuration (scripts/test builds it first). torch and its
own dependencies come from this environment through symlinks (fresh_venv.py); everything else from the
package index. Deselect with `-m "not slow"`.
"""

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path, PurePosixPath
from types import SimpleNamespace

import pytest
import torch
from packaging.requirements import Requirement

import fresh_venv
from lavin_fast import _C

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "lavin_fast"
# Written by setup.py next to the extension when it builds it (in place, or in the wheel).
BUILD_INFO = "lavin_fast/_build_info.py"
CUDA_BUILD = bool(_C.cuda_compiled())
DEVICE = "cuda" if CUDA_BUILD and torch.cuda.is_available() else "cpu"
# The smallest bench that runs every row but the torch.compile ones (compiling is torch's business,
# and minutes on two cores).
BENCH_SMALL = ["--no-compile", "--hidden", "288", "--depth", "1", "--pairs", "1", "--grid", "4",
               "--mixed-grids", "4,2"]


def _run(cmd, timeout, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)


def _tail(r, lines=30):
    return "\n".join((r.stdout + r.stderr).splitlines()[-lines:])


def _tree_build_env():
    """The settings the checkout's extension was built with, so that the wheel reuses its objects: another
    CUDA_HOME (torch guesses one from the nvcc on PATH when it is unset) or TORCH_CUDA_ARCH_LIST changes the
    compile commands, and ninja then recompiles everything (minutes)."""
    env = {"LAVIN_FAST_CUDA": "1" if CUDA_BUILD else "0"}
    if CUDA_BUILD:
        for line in (ROOT / "build" / "temp" / "build.ninja").read_text().splitlines():
            if line.startswith("nvcc = "):  # torch writes <CUDA_HOME>/bin/nvcc
                env["CUDA_HOME"] = str(Path(line.split("=", 1)[1].strip()).parent.parent)
        try:
            from lavin_fast import _build_info
        except ImportError:  # built before setup.py recorded it
            _build_info = None
        if getattr(_build_info, "TORCH_CUDA_ARCH_LIST", None):
            env["TORCH_CUDA_ARCH_LIST"] = _build_info.TORCH_CUDA_ARCH_LIST
    return env


def _build_wheel(dest):
    """pip wheel in the checkout, as `pip install .` builds it, with setuptools' build_lib, bdist and
    egg-info under dest: the checkout gets nothing new, and a stale build/lib (a module deleted since)
    cannot slip into the wheel."""
    config = dest / "setuptools.cfg"  # read by setuptools (distutils) after setup.cfg
    config.write_text(f"[build]\nbuild_base = {dest / 'build'}\n[egg_info]\negg_base = {dest}\n")
    env = dict(os.environ, **_tree_build_env(), DIST_EXTRA_CONFIG=str(config))
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "--wheel-dir", dest / "dist",
           ROOT]
    try:
        r = _run(cmd, timeout=900, env=env, cwd=dest)
    except subprocess.TimeoutExpired:
        pytest.fail("building the wheel took over 15 minutes: it recompiled instead of reusing build/temp "
                    "(was the tree built with another LAVIN_FAST_CUDA, TORCH_CUDA_ARCH_LIST or torch?)")
    assert r.returncode == 0, f"pip wheel failed:\n{_tail(r)}"
    shutil.rmtree(dest / "build")  # build_lib's copy of the extension: the wheel has it
    wheels = list((dest / "dist").glob("lavin_fast-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def _declared(wheel):
    """The normalised names of the wheel's Requires-Dist (without extras)."""
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        headers = Parser().parsestr(z.read(meta).decode())
    reqs = [Requirement(t) for t in headers.get_all("Requires-Dist") or []]
    return {fresh_venv.normalized(r.name) for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})}


def _pip_install(python, wheel, env, tmp):
    """Installs the wheel with this environment's pip into the fresh venv; skips when the package index
    cannot be reached at all (checked with a download of one small package after a failure)."""
    pip = [sys.executable, "-m", "pip", "--python", python]
    r = _run([*pip, "install", "--only-binary", ":all:", wheel], timeout=600, env=env, cwd=tmp)
    if r.returncode != 0:
        probe = _run([*pip, "download", "--no-deps", "--only-binary", ":all:", "--dest", tmp / "probe", "tqdm"],
                     timeout=300, env=env, cwd=tmp)
        if probe.returncode != 0:
            pytest.skip(f"the package index is unreachable (pip download tqdm failed: {_tail(probe, 1)})")
        pytest.fail(f"pip install of the wheel failed with the index reachable:\n{_tail(r)}")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    if not (ROOT / "setup.py").is_file():
        pytest.skip("not in a checkout of lavin_fast (no setup.py beside tests/)")
    if not (ROOT / "build" / "temp" / "build.ninja").is_file():
        pytest.skip("the checkout's extension was not built by setup.py here (no build/temp): a wheel would "
                    "compile it from scratch (minutes); scripts/test builds it first")
    return _build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("install")
    declared = _declared(wheel)
    assert "torch" in declared, declared

    # torch's closure, less what the package itself declares: pip must install those from the index.
    linked = {k: d for k, d in fresh_venv.runtime_closure("torch").items() if k == "torch" or k not in declared}
    fresh_venv.link_distributions(linked, tmp / "linked")
    venv = tmp / "venv"
    python, purelib = fresh_venv.create(venv, tmp / "linked")
    env = fresh_venv.clean_env(venv)
    seen = _run([python, "-c", "import importlib.metadata as m; print(m.version('torch'))"], timeout=120, env=env)
    # Never let pip decide torch is missing: it would fetch gigabytes.
    assert seen.stdout.strip() == importlib.metadata.version("torch"), \
        f"the fresh venv does not see this torch:\n{_tail(seen)}"
    _pip_install(python, wheel, env, tmp)

    elsewhere = tmp / "elsewhere"  # not the checkout: nothing of it on sys.path
    elsewhere.mkdir()
    return SimpleNamespace(declared=declared, venv=venv, python=python, purelib=purelib, env=env,
                           cwd=elsewhere, script=venv / "bin" / "lavin-fast")


def test_wheel_holds_every_module_and_the_extension_only(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    tops = {PurePosixPath(n).parts[0] for n in names} - {"lavin_fast"}
    assert len(tops) == 1 and next(iter(tops)).endswith(".dist-info"), \
        f"the wheel holds more than the package (tests/, bench/?): {sorted(tops)}"
    in_wheel = {n for n in names if n.endswith(".py")}
    in_tree = {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    assert in_wheel - {BUILD_INFO} == in_tree - {BUILD_INFO}, "modules missing from the wheel (a subpackage " \
        f"without __init__.py, or not matched by [tool.setuptools.packages.find]?): {sorted(in_tree - in_wheel)}"
    assert BUILD_INFO in names
    assert [n for n in names if n.endswith(".so")] == [n for n in names if PurePosixPath(n).match("lavin_fast/_C*.so")]
    assert len([n for n in names if n.endswith(".so")]) == 1, names


# Run in the fresh venv from another folder: where the package comes from, every module imports with only
# the declared dependencies, and nothing asks for the repository's bench/ or tests/ (an import caught by
# try/except included).
PROBE = r"""
import importlib, importlib.abc, importlib.metadata as md, json, pkgutil, sys

class Watch(importlib.abc.MetaPathFinder):
    asked = []
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("bench", "tests"):
            self.asked.append(name)
        return None

sys.meta_path.insert(0, Watch())
import torch, lavin_fast, lavin_fast._C, lavin_fast._build_info as build_info
modules = [m.name for m in pkgutil.walk_packages(lavin_fast.__path__, "lavin_fast.") if m.name != "lavin_fast.__main__"]
for name in modules:
    importlib.import_module(name)
print(json.dumps({
    "package": lavin_fast.__file__, "extension": lavin_fast._C.__file__, "torch": torch.__file__,
    "modules": modules, "asked": Watch.asked, "cuda_compiled": build_info.CUDA_COMPILED,
    "dependencies": {n: str(md.distribution(n).locate_file("")) for n in sys.argv[1:]},
}))
"""


def test_installed_package_is_the_venvs_and_needs_only_its_declared_dependencies(installed):
    others = sorted(installed.declared - {"torch"})
    r = _run([installed.python, "-c", PROBE, *others], timeout=300, env=installed.env, cwd=installed.cwd)
    assert r.returncode == 0, f"importing the installed package failed:\n{_tail(r)}"
    got = json.loads(r.stdout.strip().splitlines()[-1])
    site = installed.purelib.resolve()
    for key in ("package", "extension"):
        assert Path(got[key]).resolve().is_relative_to(site), f"{key} {got[key]} is not the venv's ({site})"
    assert not Path(got["torch"]).resolve().is_relative_to(site), "pip installed another torch into the venv"
    assert "lavin_fast.cli.generate" in got["modules"] and "lavin_fast.models.jdit" in got["modules"]
    assert got["asked"] == [], f"the installed package imports the repository's folders: {got['asked']}"
    assert got["cuda_compiled"] == CUDA_BUILD
    for name, where in got["dependencies"].items():  # installed by pip because declared, not linked
        assert Path(where).resolve() == site, f"{name} came from {where}, not from pip in the venv"


def test_generate_example_from_another_folder(installed):
    r = _run([installed.script, "generate", "--example", "--quiet", "--device", DEVICE], timeout=600,
             env=installed.env, cwd=installed.cwd)
    assert r.returncode == 0, _tail(r)
    result = installed.cwd / "lavin_fast_example" / "query_lavin.png"
    assert result.is_file(), r.stdout
    # Read with the venv's Pillow (a declared dependency, so there).
    check = _run([installed.python, "-c", "import sys; from PIL import Image; im = Image.open(sys.argv[1]); "
                  "im.load(); print(im.format, *im.size)", result], timeout=120, env=installed.env,
                 cwd=installed.cwd)
    assert check.returncode == 0, _tail(check)
    fmt, w, h = check.stdout.split()
    assert fmt == "PNG" and min(int(w), int(h)) >= 64, check.stdout  # the 64x64 result, maybe beside the query


def test_bench_from_another_folder(installed):
    out = installed.cwd / "bench.json"
    r = _run([installed.script, "bench", "--repeats", "1", *BENCH_SMALL, "--device", DEVICE, "--json", out],
             timeout=600, env=installed.env, cwd=installed.cwd)
    assert r.returncode == 0, _tail(r)
    report = json.loads(out.read_text())
    assert report["info"]["cpu"], report["info"]  # machine.py, in the package
    assert "lavin_fast, packed CFG" in report["cfg_step_seconds"], report
