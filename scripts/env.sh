# Sourced by scripts/test and scripts/bench: create or reuse the repo's virtualenv, install torch and
# the build/test dependencies (never with build isolation, which would fetch another torch), then
# build the extension incrementally.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
venv="$repo/.venv"
py=${PYTHON:-python3.11}
command -v "$py" >/dev/null || py=python3

if [ ! -x "$venv/bin/python" ]; then
  echo "[env] creating $venv"
  "$py" -m venv "$venv"
fi
# shellcheck disable=SC1091
source "$venv/bin/activate"

# Dependencies: reinstall only when requirements change (torch is 5.5 GB; never twice).
stamp="$venv/.deps-installed"
if [ ! -f "$stamp" ] || ! cmp -s "$stamp" requirements-dev.txt; then
  echo "[env] installing dependencies (torch 2.14.1 from this machine's disk on first run)"
  python -m pip install --quiet --upgrade pip
  python -m pip install --quiet -r requirements-dev.txt
  cp requirements-dev.txt "$stamp"
fi

export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
export MAX_JOBS=${MAX_JOBS:-2}

# Build: the first run makes an editable install (which compiles); later runs rebuild only what
# changed (ninja keeps the objects under build/temp for both ways of building).
t0=$(date +%s)
if ! python -m pip show --quiet lavin_fast >/dev/null 2>&1; then
  echo "[env] pip install --no-build-isolation -e . (compiles lavin_fast._C)"
  python -m pip install --quiet --no-build-isolation --no-deps -e .
else
  echo "[env] building lavin_fast._C (incremental)"
  python setup.py --quiet build_ext --inplace
fi
echo "[env] build took $(( $(date +%s) - t0 )) s"
