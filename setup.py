"""Builds lavin_fast._C: the CPU kernels always, the CUDA kernels when nvcc and a CUDA build of torch
are present (see README, "Build switches").

Environment:
  LAVIN_FAST_CUDA=0|1      force the CUDA part off / on (default: on when nvcc and torch.version.cuda exist)
  TORCH_CUDA_ARCH_LIST     GPU architectures (default "8.0;9.0": A100 and H100)
  MAX_JOBS                 parallel compile jobs (ninja)
  LAVIN_FAST_DEBUG=1       -O0 -g builds
"""

import glob
import os
import platform
import subprocess
import sys

from setuptools import setup

import torch
from torch.utils import cpp_extension

ROOT = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join("csrc")

# CPU kernels are compiled once per instruction set and picked at run time (csrc/common/cpu_isa.h),
# the way ATen does it, so one build runs on any x86-64 and uses AVX-512 where the CPU has it.
CPU_ISA_FLAGS = {
    "DEFAULT": [],
    "AVX2": ["-mavx2", "-mfma", "-mf16c"],
    "AVX512": ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx2", "-mfma", "-mf16c"],
}
IS_X86 = platform.machine().lower() in ("x86_64", "amd64")


def env_flag(name):
    v = os.environ.get(name)
    if v is None or v == "":
        return None
    return v.lower() not in ("0", "false", "off", "no")


def want_cuda():
    forced = env_flag("LAVIN_FAST_CUDA")
    available = torch.version.cuda is not None and cpp_extension.CUDA_HOME is not None and os.path.exists(
        os.path.join(cpp_extension.CUDA_HOME, "bin", "nvcc"))
    if forced is True and not available:
        sys.exit("LAVIN_FAST_CUDA=1 but no CUDA toolkit (CUDA_HOME or /usr/local/cuda with bin/nvcc) "
                 "or torch is not a CUDA build (torch.version.cuda is None)")
    return available if forced is None else forced


def sources(pattern):
    return sorted(glob.glob(os.path.join(CSRC, "**", pattern), recursive=True))


WITH_CUDA = want_cuda()
DEBUG = env_flag("LAVIN_FAST_DEBUG") is True
os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0")

opt = ["-O0", "-g"] if DEBUG else ["-O3"]
# -fopenmp: ATen's at::parallel_for is header code that runs serially unless the caller is compiled
# with OpenMP (torch's own parallel backend); without it every CPU kernel ran on one thread.
cxx_flags = ["-std=c++20", *opt, "-fopenmp", "-fvisibility=hidden", "-Wall", "-Wno-unused-function"]
defines = []
if IS_X86:
    defines += [("LAVIN_FAST_CPU_AVX2", None), ("LAVIN_FAST_CPU_AVX512", None)]
if WITH_CUDA:
    defines.append(("LAVIN_FAST_WITH_CUDA", None))

# *_cpu_kernel.cpp are the per-ISA sources: built by IsaBuildExt below, not by setuptools.
isa_sources = sources("*_cpu_kernel.cpp")
host_sources = [s for s in sources("*.cpp") if s not in isa_sources and not s.endswith("_cuda.cpp")]
cuda_sources = (sources("*_cuda.cpp") + sources("*.cu")) if WITH_CUDA else []
# csrc/tests/ holds the native tests (CTest, with main()s): never part of the extension.
host_sources, cuda_sources = ([s for s in group if os.sep + "tests" + os.sep not in s]
                              for group in (host_sources, cuda_sources))

nvcc_flags = [*opt, "-std=c++20", "--use_fast_math", "-lineinfo", "--expt-relaxed-constexpr",
              "-Xptxas=-v", "-Xfatbin=-compress-all",
              "-U__CUDA_NO_HALF_OPERATORS__", "-U__CUDA_NO_HALF_CONVERSIONS__",
              "-U__CUDA_NO_BFLOAT16_OPERATORS__", "-U__CUDA_NO_BFLOAT16_CONVERSIONS__"]

Extension = cpp_extension.CUDAExtension if WITH_CUDA else cpp_extension.CppExtension
ext = Extension(
    name="lavin_fast._C",
    sources=host_sources + cuda_sources,
    include_dirs=[os.path.join(ROOT, CSRC)],
    define_macros=defines,
    extra_compile_args={"cxx": cxx_flags, "nvcc": nvcc_flags} if WITH_CUDA else {"cxx": cxx_flags},
    extra_link_args=["-fopenmp"],
    py_limited_api=False,
)


def build_info_text():
    """lavin_fast/_build_info.py: what the extension was built for, which `lavin-fast doctor` reports
    (the .so's fatbin names its GPU architectures only to cuobjdump)."""
    arch_flags = None
    if WITH_CUDA:
        try:  # torch's own reading of TORCH_CUDA_ARCH_LIST: the -gencode flags it gives nvcc
            arch_flags = cpp_extension._get_cuda_arch_flags(nvcc_flags)
        except (AttributeError, TypeError):  # private: a later torch may rename it; doctor says "unknown"
            pass
    values = {
        "TORCH_VERSION": str(torch.__version__),
        "TORCH_CUDA": torch.version.cuda,
        "CUDA_COMPILED": WITH_CUDA,
        "TORCH_CUDA_ARCH_LIST": os.environ["TORCH_CUDA_ARCH_LIST"] if WITH_CUDA else None,
        "CUDA_ARCH_FLAGS": arch_flags,
    }
    return ("# Written by setup.py next to lavin_fast._C when it built it (not tracked): what that build was for.\n"
            + "".join(f"{k} = {v!r}\n" for k, v in values.items()))


class IsaBuildExt(cpp_extension.BuildExtension):
    """BuildExtension plus the per-ISA CPU kernel objects, compiled by a ninja file of their own (the
    torch build writes one flag set for all sources) with header dependency tracking, so rebuilds are
    incremental."""

    def finalize_options(self):
        super().finalize_options()
        # One object cache for every way of building (pip install ., pip install -e ., setup.py
        # build_ext --inplace): pip's editable builds would otherwise compile in a fresh temporary
        # directory each time, and nvcc makes that minutes.
        self.build_temp = os.path.join(ROOT, "build", "temp")

    def run(self):
        super().run()
        # After a successful build (BuildExtension always runs it: ninja decides what is stale, a
        # changed TORCH_CUDA_ARCH_LIST included), next to the extension: in the package for in-place
        # and editable builds, in build_lib (and so in the wheel) otherwise.
        for e in self.extensions:
            path = os.path.join(os.path.dirname(self.get_ext_fullpath(e.name)), "_build_info.py")
            with open(path, "w") as f:
                f.write(build_info_text())

    def build_extensions(self):
        for e in self.extensions:
            e.extra_objects = list(e.extra_objects or []) + self._build_isa_objects(e)
        super().build_extensions()

    def _build_isa_objects(self, e):
        out_dir = os.path.abspath(os.path.join(self.build_temp, "cpu_isa"))
        os.makedirs(out_dir, exist_ok=True)
        includes = [os.path.abspath(p) for p in e.include_dirs] + cpp_extension.include_paths()
        abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
        # ATen's vector headers trip -Wmaybe-uninitialized inside GCC's own intrinsics headers.
        base = ["-fPIC", *cxx_flags, "-Wno-maybe-uninitialized", "-Wno-uninitialized",
                f"-D_GLIBCXX_USE_CXX11_ABI={abi}"]
        base += [f"-D{k}" if v is None else f"-D{k}={v}" for k, v in defines]
        base += [f"-isystem {p}" if "torch" in p else f"-I{p}" for p in includes]
        cxx = os.environ.get("CXX", "c++")
        lines = [
            "ninja_required_version = 1.3",
            f"cxx = {cxx}",
            f"cflags = {' '.join(base)}",
            "rule compile",
            "  command = $cxx -MMD -MF $out.d $cflags $isaflags -c $in -o $out",
            "  depfile = $out.d",
            "  deps = gcc",
            "  description = CXX $out",
        ]
        objects = []
        for src in isa_sources:
            stem = os.path.splitext(os.path.relpath(src, CSRC))[0].replace(os.sep, "_")
            for isa, flags in CPU_ISA_FLAGS.items():
                if isa != "DEFAULT" and not IS_X86:
                    continue
                obj = os.path.join(out_dir, f"{stem}.{isa}.o")
                lines.append(f"build {obj}: compile {os.path.abspath(src)}")
                lines.append(f"  isaflags = {' '.join(flags)} -DCPU_CAPABILITY={isa} -DCPU_CAPABILITY_{isa}")
                objects.append(obj)
        ninja_file = os.path.join(out_dir, "build.ninja")
        text = "\n".join(lines) + "\n"
        if not os.path.exists(ninja_file) or open(ninja_file).read() != text:
            with open(ninja_file, "w") as f:
                f.write(text)
        jobs = os.environ.get("MAX_JOBS") or str(os.cpu_count() or 1)
        subprocess.check_call(["ninja", "-C", out_dir, "-j", jobs])
        return objects


setup(
    ext_modules=[ext],
    cmdclass={"build_ext": IsaBuildExt.with_options(use_ninja=True)},
    python_requires=">=3.10",
)
