#!/usr/bin/env bash
# C++-level tests of the native code (csrc/tests/, see CMakeLists.txt): configure build/cmake on the first
# run (later runs reuse it; CMake re-configures by itself when CMakeLists.txt or the set of sources
# changes), build with MAX_JOBS (default 2) jobs, run ctest. Arguments go to ctest, e.g.
#   scripts/ctest.sh -R segments        scripts/ctest.sh -V -R rms_norm_cpu.avx2
# Needs the repo's .venv with torch (scripts/env.sh creates it); cmake and ninja come from it too.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

venv="$repo/.venv"
if [ ! -x "$venv/bin/python" ]; then
  # A git worktree without a .venv of its own uses the main checkout's.
  main=$(cd "$(git rev-parse --git-common-dir 2>/dev/null || echo "$repo/.git")/.." && pwd)
  [ -x "$main/.venv/bin/python" ] && venv="$main/.venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "[ctest] no .venv with python: run scripts/env.sh first" >&2
  exit 1
fi
export PATH="$venv/bin:$PATH"
command -v ninja >/dev/null && export CMAKE_GENERATOR=${CMAKE_GENERATOR:-Ninja}

build="$repo/build/cmake"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$repo" -B "$build" -DPython_EXECUTABLE="$venv/bin/python"
fi
cmake --build "$build" -j "${MAX_JOBS:-2}"
# Editors (clangd) look for compile_commands.json at the root; .gitignore ignores it. Never replace a
# real file someone put there.
if [ -L compile_commands.json ] || [ ! -e compile_commands.json ]; then
  ln -sfn build/cmake/compile_commands.json compile_commands.json
fi
# Serial on purpose: each kernel test runs 3 OpenMP threads, and oversubscribed OpenMP spins.
ctest --test-dir "$build" --output-on-failure "$@"
