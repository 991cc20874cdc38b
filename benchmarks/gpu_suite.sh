#!/usr/bin/env bash
# The GPU suite in one command (see benchmarks/gpu_suite.py): every CUDA training path at the real
# shapes on one H100/H200 in ≤ 8 minutes; fails loudly (non-zero exit) when any of them breaks.
#
#   bash benchmarks/gpu_wheels.sh                    # here, once: the wheels the device image lacks → .whl/
#   bash benchmarks/gpu_suite.sh --results "$OUT"    # on the device, with .whl carried along
#   bash benchmarks/gpu_suite.sh --plan              # anywhere: check and print the plan, run nothing
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if compgen -G ".whl/*.whl" >/dev/null; then
  # --no-deps: the image's own torch, numpy, opencv… stay; only what it lacks is added
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/cardid-site .whl/*.whl
  export PYTHONPATH="/tmp/cardid-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
"$PY" -c "import cardid, pydantic, usearch" || {
  echo "gpu_suite: cardid's dependencies are missing here; run benchmarks/gpu_wheels.sh and carry .whl" >&2
  exit 3
}
exec "$PY" benchmarks/gpu_suite.py "$@"
