#!/usr/bin/env python3
"""Checks that the dialect's PTX wrappers become the intended tensor-core SASS instructions.

Compiles csrc/tests/probe_tensor_core.cu (a kernel calling every wrapper of simt/tensor_core.cuh and
simt/cp_async.cuh) for each architecture and, in every probe kernel's SASS, looks for HMMA.16816.F32
(.BF16 for bf16 inputs), the six LDSM shapes (x1/x2/x4, plain and .trans = MT88), LDGSTS of 4, 8 and
16 bytes (the 16-byte one L1-bypassing, i.e. .cg), LDGDEPBAR (commit_group) and DEPBAR (wait_group).
No GPU needed. Needs cuobjdump: $CUDA_HOME/bin, PATH, or the copy Triton's wheel ships; without one
the check is skipped (exit 0) unless --require. Exit status 1 if an instruction is missing.

  scripts/check_sass.py                 # TORCH_CUDA_ARCH_LIST or 8.0;9.0
  scripts/check_sass.py --arch 80 90 100 --require
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_ptxas import NVCC_FLAGS, ROOT, default_archs  # noqa: E402  (one copy of the flags)

PROBE = os.path.join(ROOT, "csrc", "tests", "probe_tensor_core.cu")

# (what, opcode regex): each must match some instruction of every probe kernel.
REQUIRED = [
    ("ldmatrix_x1", r"LDSM\.16\.M88"),
    ("ldmatrix_x2", r"LDSM\.16\.M88\.2"),
    ("ldmatrix_x4", r"LDSM\.16\.M88\.4"),
    ("ldmatrix_x1_trans", r"LDSM\.16\.MT88"),
    ("ldmatrix_x2_trans", r"LDSM\.16\.MT88\.2"),
    ("ldmatrix_x4_trans", r"LDSM\.16\.MT88\.4"),
    ("cp_async<16> (.cg)", r"LDGSTS\.E(\.\w+)*\.BYPASS(\.\w+)*\.128"),
    ("cp_async<8>", r"LDGSTS\.E(\.\w+)*\.64"),
    ("cp_async<4>", r"LDGSTS\.E(\.(?!64|128|BYPASS)\w+)*"),
    ("cp_async_commit", r"LDGDEPBAR"),
    ("cp_async_wait", r"DEPBAR(\.\w+)*"),
]
MMA = {"bf16": r"HMMA\.16816\.F32\.BF16", "fp16": r"HMMA\.16816\.F32"}

FUNCTION = re.compile(r"Function : (\S+)")
ARCH = re.compile(r"arch = (sm_\d+a?)")
OPCODE = re.compile(r"/\*[0-9a-f]{4,}\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)*)")


def find_cuobjdump(given):
    candidates = [given] if given else []
    candidates.append(os.path.join(os.environ.get("CUDA_HOME") or "/usr/local/cuda", "bin", "cuobjdump"))
    candidates.append(shutil.which("cuobjdump"))
    candidates += glob.glob(os.path.join(sysconfig.get_paths()["purelib"], "triton", "backends", "nvidia",
                                         "bin", "cuobjdump"))
    return next((c for c in candidates if c and os.access(c, os.X_OK)), None)


def add_common_args(ap):
    """The options every SASS check takes."""
    ap.add_argument("--arch", nargs="+", help="SM versions (default: TORCH_CUDA_ARCH_LIST or 8.0;9.0)")
    ap.add_argument("--nvcc", default=os.path.join(os.environ.get("CUDA_HOME") or "/usr/local/cuda", "bin", "nvcc"))
    ap.add_argument("--cuobjdump", help="cuobjdump to use (default: searched, see find_cuobjdump)")
    ap.add_argument("--require", action="store_true", help="fail (exit 2) when no cuobjdump is found")


def archs_of(args):
    return [a.replace(".", "").replace("sm_", "") for a in (args.arch or default_archs())]


def compile_object(nvcc, src, archs, obj):
    """nvcc -c src for the archs with setup.py's flags (without ptxas' -v report) -> obj."""
    gencode = [f for a in archs for f in ("-gencode", f"arch=compute_{a},code=sm_{a}")]
    subprocess.run([nvcc, *[f for f in NVCC_FLAGS if f != "-Xptxas=-v"], *gencode,
                    f"-I{os.path.join(ROOT, 'csrc')}", "-c", src, "-o", obj], check=True)
    return obj


def sass_of(cuobjdump, obj):
    return subprocess.run([cuobjdump, "-sass", obj], capture_output=True, text=True, check=True).stdout


def opcodes_by_kernel(sass):
    """-> {(arch, mangled kernel): set of opcodes}"""
    out, arch, fn = {}, None, None
    for line in sass.splitlines():
        m = ARCH.search(line)
        if m:
            arch = m.group(1)
            continue
        m = FUNCTION.search(line)
        if m:
            fn = m.group(1)
            out[(arch, fn)] = set()
            continue
        m = OPCODE.search(line)
        if m and fn:
            out[(arch, fn)].add(m.group(1))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(ap)
    args = ap.parse_args()

    cuobjdump = find_cuobjdump(args.cuobjdump)
    if not cuobjdump:
        print("SKIP: no cuobjdump (CUDA toolkit or the triton wheel); SASS not checked")
        return 2 if args.require else 0
    archs = archs_of(args)
    with tempfile.TemporaryDirectory() as tmp:
        sass = sass_of(cuobjdump, compile_object(args.nvcc, PROBE, archs, os.path.join(tmp, "probe.o")))
    kernels = opcodes_by_kernel(sass)
    missing = []
    for a in archs:
        for dtype, mma in MMA.items():
            found = [ops for (arch, fn), ops in kernels.items() if arch == f"sm_{a}" and
                     ("13__nv_bfloat16" if dtype == "bf16" else "6__half") in fn]
            if not found:
                missing.append(f"sm_{a} {dtype}: no probe kernel in the SASS")
                continue
            for what, pattern in [("mma_m16n8k16", mma), *REQUIRED]:
                if not any(re.fullmatch(pattern, op) for op in found[0]):
                    missing.append(f"sm_{a} {dtype}: {what} ({pattern})")
    if missing:
        print("FAIL: instructions missing from the SASS:\n  " + "\n  ".join(missing))
        return 1
    print(f"OK: every wrapper's instruction in the SASS for sm_{', sm_'.join(archs)} ({cuobjdump})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
