#!/usr/bin/env python3
"""Compiles the CUDA sources with `ptxas -v` and fails if any kernel spills or uses local memory.

No GPU is needed (nor torch: the .cu files must not include torch headers). Prints registers per
thread of every kernel, one column per architecture. Exit status 1 if a kernel has a stack frame,
spill stores/loads or lmem > 0, 2 if compilation fails.

  scripts/check_ptxas.py                          # every csrc/**/*.cu, for TORCH_CUDA_ARCH_LIST or 8.0;9.0
  scripts/check_ptxas.py csrc/norms/rms_norm_cuda_launch.cu --arch 80 90
  scripts/check_ptxas.py --log build.log          # parse the ptxas output of a build instead

The nvcc flags mirror setup.py's (keep them in sync); -I csrc is added, nothing from torch.
"""

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# setup.py's nvcc flags, minus -Xfatbin compression (irrelevant here).
NVCC_FLAGS = ["-O3", "-std=c++20", "--use_fast_math", "-lineinfo", "--expt-relaxed-constexpr",
              "-Xptxas=-v", "-DLAVIN_FAST_WITH_CUDA"]

ENTRY = re.compile(r"Compiling entry function '([^']+)' for '(sm_\d+a?)'")
PROPS = re.compile(r"Function properties for (\S+)")
STACK = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
USED = re.compile(r"Used (\d+) registers(.*)")
LMEM = re.compile(r"(\d+) bytes lmem")
SMEM = re.compile(r"(\d+) bytes smem")


def parse(text):
    """-> {(mangled, arch): {"regs", "stack", "spill_st", "spill_ld", "lmem", "smem"}}"""
    out = {}
    current = None  # (name, arch) of the last "Compiling entry function"
    props_of = None  # name of the last "Function properties for"
    for line in text.splitlines():
        m = ENTRY.search(line)
        if m:
            current = (m.group(1), m.group(2))
            out.setdefault(current, {"regs": None, "stack": 0, "spill_st": 0, "spill_ld": 0,
                                     "lmem": 0, "smem": 0})
            continue
        m = PROPS.search(line)
        if m:
            props_of = m.group(1)
            continue
        m = STACK.search(line)
        if m and current and props_of == current[0]:
            rec = out[current]
            rec["stack"], rec["spill_st"], rec["spill_ld"] = (int(g) for g in m.groups())
            continue
        m = USED.search(line)
        if m and current:
            rec = out[current]
            rec["regs"] = int(m.group(1))
            rest = m.group(2)
            lm = LMEM.search(rest)
            sm = SMEM.search(rest)
            rec["lmem"] = int(lm.group(1)) if lm else 0
            rec["smem"] = int(sm.group(1)) if sm else 0
    return out


def demangle(names):
    cxxfilt = shutil.which("c++filt")
    if not cxxfilt or not names:
        return {n: n for n in names}
    res = subprocess.run([cxxfilt], input="\n".join(names), capture_output=True, text=True, check=True)
    return dict(zip(names, res.stdout.splitlines()))


def short(name):
    """lavin_fast::ns::kernel<T, 8>(Params, ...) -> kernel<bf16, 8>"""
    name = re.sub(r"\(.*\)$", "", name)
    name = re.sub(r"\bvoid\s+", "", name)
    name = re.sub(r"\blavin_fast::(\w+::)*", "", name)
    return name.replace("__nv_bfloat16", "bf16").replace("__half", "fp16")


def default_archs():
    spec = os.environ.get("TORCH_CUDA_ARCH_LIST") or "8.0;9.0"
    archs = []
    for a in re.split(r"[;\s,]+", spec.strip()):
        a = a.replace("+PTX", "")
        if a:
            archs.append(a.replace(".", ""))
    return archs


def compile_one(nvcc, src, archs, include, threads):
    gencode = []
    for a in archs:
        gencode += ["-gencode", f"arch=compute_{a},code=sm_{a}"]
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [nvcc, *NVCC_FLAGS, *gencode, f"--threads={threads}", f"-I{include}", "-c", src,
               "-o", os.path.join(tmp, "out.o")]
        res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        sys.stderr.write(f"$ {' '.join(cmd)}\n{res.stdout}{res.stderr}")
        raise SystemExit(2)
    return res.stdout + res.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sources", nargs="*", help="CUDA sources (default: every csrc/**/*.cu)")
    ap.add_argument("--arch", nargs="+", help="SM versions, e.g. 80 90 (default: TORCH_CUDA_ARCH_LIST or 8.0;9.0)")
    ap.add_argument("--nvcc", help="nvcc to use (default: $CUDA_HOME/bin/nvcc, /usr/local/cuda/bin/nvcc, PATH)")
    ap.add_argument("--include", default=os.path.join(ROOT, "csrc"), help="include root (default: csrc)")
    ap.add_argument("--log", help="parse this build log instead of compiling")
    ap.add_argument("-j", "--jobs", type=int, default=int(os.environ.get("MAX_JOBS") or 2),
                    help="parallel nvcc jobs / --threads (default: MAX_JOBS or 2)")
    args = ap.parse_args()

    if args.log:
        with open(args.log, errors="replace") as f:
            records = parse(f.read())
        archs = sorted({a for _, a in records})
    else:
        nvcc = args.nvcc
        if not nvcc:
            home = os.environ.get("CUDA_HOME") or "/usr/local/cuda"
            nvcc = os.path.join(home, "bin", "nvcc")
            if not os.path.exists(nvcc):
                nvcc = shutil.which("nvcc")
        if not nvcc or not os.path.exists(nvcc):
            sys.exit("nvcc not found: set CUDA_HOME or pass --nvcc")
        sources = args.sources or sorted(glob.glob(os.path.join(ROOT, "csrc", "**", "*.cu"), recursive=True))
        if not sources:
            sys.exit("no .cu sources")
        archs = [a.replace(".", "").replace("sm_", "") for a in (args.arch or default_archs())]
        # One nvcc per source, each compiling its architectures on --threads in parallel.
        per_src = max(1, args.jobs // len(sources)) if len(sources) < args.jobs else 1
        with ThreadPoolExecutor(max_workers=max(1, min(args.jobs, len(sources)))) as pool:
            logs = list(pool.map(lambda s: compile_one(nvcc, s, archs, args.include, min(per_src, len(archs))),
                                 sources))
        records = {}
        for log in logs:
            records.update(parse(log))
        archs = [f"sm_{a}" for a in archs]

    if not records:
        sys.exit("no ptxas output found (was -Xptxas -v passed?)")
    names = sorted({n for n, _ in records})
    pretty = demangle(names)
    rows = sorted(names, key=lambda n: short(pretty[n]))

    bad = []
    width = max(len(short(pretty[n])) for n in rows)
    header = f"{'kernel':<{width}}  " + "  ".join(f"{a + ' regs':>12}" for a in archs) + "  spills/stack/lmem"
    print(header)
    print("-" * len(header))
    for n in rows:
        cells, issues = [], []
        for a in archs:
            rec = records.get((n, a))
            if rec is None:
                cells.append(f"{'-':>12}")
                continue
            cells.append(f"{rec['regs'] if rec['regs'] is not None else '?':>12}")
            for key, label in (("stack", "stack"), ("spill_st", "spill st"), ("spill_ld", "spill ld"),
                               ("lmem", "lmem")):
                if rec[key] > 0:
                    issues.append(f"{a}: {rec[key]} B {label}")
        status = "none" if not issues else "; ".join(issues)
        if issues:
            bad.append(short(pretty[n]))
        print(f"{short(pretty[n]):<{width}}  " + "  ".join(cells) + f"  {status}")
    if bad:
        print(f"\nFAIL: {len(bad)} kernel(s) spill or use local memory: {', '.join(bad)}")
        return 1
    print(f"\nOK: {len(rows)} kernels x {len(archs)} archs, no spills, no local memory")
    return 0


if __name__ == "__main__":
    sys.exit(main())
