#!/usr/bin/env python3
"""Checks the SASS of the attention forward kernels: every attention_fwd_kernel<T, D> (bf16 / fp16 x
head dims 64, 72, 128) must contain, for each architecture,
  HMMA.16816.F32[.BF16]   the mma.m16n8k16 of S = Q K^T and O += P V,
  LDSM.16.M88.4           ldmatrix x4 of the Q (A) and K (B) fragments,
  LDSM.16.MT88.4          ldmatrix x4 .trans of the V (B) fragments,
  LDGSTS...BYPASS...128   the 16-byte cp.async.cg of the Q, K, V tiles,
  LDGDEPBAR / DEPBAR      cp.async commit / wait,
and no local memory traffic (LDL / STL). The same instructions must sit inside the key-tile loop: at
least one of each between the loop's head (the target of a backward branch) and that branch.

Reads the objects of the last CUDA build (build/temp/**/attention_cuda_hd*.o) when they exist (no
recompilation; --compile forces it), else compiles csrc/attention/attention_cuda_hd*.cu with nvcc.
Needs cuobjdump (CUDA toolkit or the triton wheel; skipped without one unless --require).

  scripts/check_sass_attention.py                   # TORCH_CUDA_ARCH_LIST or 8.0;9.0
  scripts/check_sass_attention.py --compile --arch 80 90
"""

import argparse
import glob
import os
import re
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_ptxas import ROOT  # noqa: E402
from check_sass import (ARCH, FUNCTION, OPCODE, add_common_args, archs_of, compile_object,  # noqa: E402
                        find_cuobjdump, sass_of)

SOURCES = sorted(glob.glob(os.path.join(ROOT, "csrc", "attention", "attention_cuda_hd*.cu")))
HEAD_DIMS = (64, 72, 128)
REQUIRED = [
    ("ldmatrix_x4 (Q, K)", r"LDSM\.16\.M88\.4"),
    ("ldmatrix_x4_trans (V)", r"LDSM\.16\.MT88\.4"),
    ("cp_async<16> (.cg)", r"LDGSTS\.E(\.\w+)*\.BYPASS(\.\w+)*\.128"),
]
ONCE = [("cp_async_commit", r"LDGDEPBAR"), ("cp_async_wait", r"DEPBAR(\.\w+)*")]
MMA = {"bf16": r"HMMA\.16816\.F32\.BF16", "fp16": r"HMMA\.16816\.F32"}
FORBIDDEN = [("local memory", r"(LDL|STL)(\.\w+)*")]
BRANCH = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P\w+\s+)?BRA\b[^;]*?0x([0-9a-f]+)")
ADDR = re.compile(r"/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P\w+\s+)?([A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)*)")


def kernels(sass):
    """-> {(arch, mangled): [(address, opcode), ...]} for the attention forward kernels."""
    out, arch, fn = {}, None, None
    for line in sass.splitlines():
        m = ARCH.search(line)
        if m:
            arch = m.group(1)
            continue
        m = FUNCTION.search(line)
        if m:
            fn = m.group(1) if "attention_fwd_kernel" in m.group(1) else None
            if fn:
                out[(arch, fn)] = []
            continue
        if fn:
            m = ADDR.search(line)
            if m:
                out[(arch, fn)].append((int(m.group(1), 16), m.group(2)))
                b = BRANCH.search(line)
                if b:
                    out[(arch, fn)].append((int(b.group(1), 16), f"BRA->{int(b.group(2), 16)}"))
    return out


def loop_bodies(instrs):
    """Instruction lists between a backward branch's target and the branch."""
    bodies = []
    for addr, op in instrs:
        if op.startswith("BRA->"):
            target = int(op[5:])
            if target < addr:
                bodies.append([o for a, o in instrs if target <= a <= addr and not o.startswith("BRA->")])
    return bodies


def objects(archs, force_compile, nvcc, tmp):
    built = sorted(glob.glob(os.path.join(ROOT, "build", "**", "attention_cuda_hd*.o"), recursive=True))
    if built and not force_compile:
        return built
    return [compile_object(nvcc, src, archs, os.path.join(tmp, os.path.basename(src) + ".o")) for src in SOURCES]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(ap)
    ap.add_argument("--compile", action="store_true", help="compile the sources even if build objects exist")
    args = ap.parse_args()

    cuobjdump = find_cuobjdump(args.cuobjdump)
    if not cuobjdump:
        print("SKIP: no cuobjdump (CUDA toolkit or the triton wheel); SASS not checked")
        return 2 if args.require else 0
    archs = archs_of(args)
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        for obj in objects(archs, args.compile, args.nvcc, tmp):
            found.update(kernels(sass_of(cuobjdump, obj)))
    problems, checked = [], 0
    for a in archs:
        for dtype, mma in MMA.items():
            for d in HEAD_DIMS:
                tag = ("13__nv_bfloat16" if dtype == "bf16" else "6__half") + f"Li{d}E"
                ks = [v for (arch, fn), v in found.items() if arch == f"sm_{a}" and tag in fn]
                name = f"sm_{a} attention_fwd_kernel<{dtype}, {d}>"
                if not ks:
                    problems.append(f"{name}: not in the SASS")
                    continue
                instrs = ks[0]
                ops = {o for _, o in instrs}
                checked += 1
                for what, pattern in [("mma_m16n8k16", mma), *REQUIRED, *ONCE]:
                    if not any(re.fullmatch(pattern, o) for o in ops):
                        problems.append(f"{name}: no {what} ({pattern})")
                for what, pattern in FORBIDDEN:
                    if any(re.fullmatch(pattern, o) for o in ops):
                        problems.append(f"{name}: {what} ({pattern})")
                loop_ok = any(all(any(re.fullmatch(p, o) for o in body) for _, p in [("", mma), *REQUIRED])
                              for body in loop_bodies(instrs))
                if not loop_ok:
                    problems.append(f"{name}: no loop holds HMMA, LDSM and LDGSTS together")
    if problems:
        print("FAIL: attention forward SASS:\n  " + "\n  ".join(problems))
        return 1
    print(f"OK: {checked} attention forward kernels: HMMA, LDSM (x4, x4.trans) and LDGSTS.128 in the "
          f"key-tile loop, no local memory ({cuobjdump})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
