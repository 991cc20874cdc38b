#!/usr/bin/env bash
# Download (here, where PyPI is reachable) the wheels that the GPU machine's image lacks, at the
# versions this checkout's .venv runs, for its Python 3.12 on x86-64 Linux, into .whl/ (git-ignored).
# The image already has torch, timm, transformers, onnx, onnxruntime, opencv, numpy, typer, rich…
set -euo pipefail
cd "$(dirname "$0")/.."
PIP=${PIP:-.venv/bin/pip}
NAMES=(pydantic pydantic-core annotated-types typing-inspection typing-extensions usearch numkong onnxslim
       ultralytics ultralytics-thop)
mkdir -p .whl
for name in "${NAMES[@]}"; do
  version=$("$PIP" show "$name" 2>/dev/null | sed -n 's/^Version: //p')
  [ -n "$version" ] || { echo "gpu_wheels: $name is not installed in .venv (make install)" >&2; exit 1; }
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "$name==$version"
done
du -sh .whl
