"""A fresh virtualenv that sees this environment's torch without installing or copying it.

torch and its runtime dependencies (nvidia-*, triton, ...) are gigabytes: the fresh venv gets a folder
of symlinks to exactly those distributions (their packages and .dist-info folders, found through
importlib.metadata) and a .pth file naming that folder, so that pip there counts torch as installed.
Everything else the package needs, pip has to install from the index: what tests/test_install.py
checks is that the package declares it.
"""

import importlib.metadata as metadata
import os
import re
import subprocess
import sys
from pathlib import Path, PurePosixPath

from packaging.requirements import Requirement


def normalized(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure(root):
    """The installed distributions `root` needs at run time: its requirements whose markers hold here
    (the extras a requirement names included: torch asks for cuda-toolkit[cublas,...]), recursively.
    A requirement that is not installed is left out (torch then imports without it, or fails to)."""
    found, seen, todo = {}, set(), [(root, frozenset())]
    while todo:
        name, extras = todo.pop()
        if (normalized(name), extras) in seen:
            continue
        seen.add((normalized(name), extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        found[normalized(dist.metadata["Name"])] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
                todo.append((req.name, frozenset(req.extras)))
    return found


def _owners(site):
    """For every recorded path under one site-packages folder and each folder above it: the names of
    the distributions with files there."""
    owners = {}
    for dist in metadata.distributions(path=[str(site)]):
        name = normalized(dist.metadata["Name"])
        for f in dist.files or []:
            parts = PurePosixPath(f).parts
            if not parts or parts[0] == "..":  # console scripts in bin/
                continue
            for i in range(1, len(parts) + 1):
                owners.setdefault(parts[:i], set()).add(name)
    return owners


def link_distributions(dists, dest):
    """Symlinks the files of `dists` (name -> Distribution) into dest: a whole folder where every
    distribution with files in it is one of them (torch/, triton/), folder by folder where others share
    it (nvidia/, whose other packages are not wanted)."""
    wanted = set(dists)
    sites = {Path(d.locate_file("")).resolve() for d in dists.values()}
    for site in sites:
        owners = _owners(site)
        children = {}
        for parts in owners:
            children.setdefault(parts[:-1], []).append(parts)

        def link(parent):
            for parts in sorted(children.get(parent, ())):
                who = owners[parts]
                if not who & wanted:
                    continue
                target = dest.joinpath(*parts)
                if parts not in children or who <= wanted:
                    if target.exists() or target.is_symlink():
                        raise RuntimeError(f"{target} comes from two site-packages folders; cannot link both")
                    target.symlink_to(site.joinpath(*parts))
                else:
                    target.mkdir(exist_ok=True)
                    link(parts)

        dest.mkdir(parents=True, exist_ok=True)
        link(())


def clean_env(venv):
    """The environment for commands in the fresh venv: nothing that points Python at this checkout or
    at another environment."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "PYTHONSAFEPATH")}
    env["PYTHONNOUSERSITE"] = "1"
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    return env


def create(venv, linked):
    """A venv without pip (this environment's pip installs into it with --python) whose site-packages
    has a .pth naming the `linked` folder; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             env=clean_env(venv), capture_output=True, text=True, check=True,
                             timeout=60).stdout.strip()
    (Path(purelib) / "linked_from_dev_env.pth").write_text(f"{linked}\n")
    return python, Path(purelib)
