#!/usr/bin/env bash
# Install PyTorch into the environment of the given python, choosing the build for this machine:
#   - torch already importable: keep it (users with their own CUDA/ROCm build keep theirs);
#   - an NVIDIA GPU present: the default build from PyPI (CUDA);
#   - otherwise a CPU-only build: a local CPU wheel that pip is configured to see (find-links) if there is
#     one, else PyTorch's CPU index. This avoids pulling GBs of CUDA libraries onto CPU machines, without
#     pinning a version for anyone.
set -euo pipefail
py="${1:-python3}"

if "$py" -c "import torch" 2>/dev/null; then
  echo "torch $("$py" -c 'import torch; print(torch.__version__)') already installed"
  exit 0
fi
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  echo "NVIDIA GPU found: installing the default (CUDA) torch build"
  exec "$py" -m pip install torch
fi

links="${PIP_FIND_LINKS:-} $("$py" -m pip config get global.find-links 2>/dev/null || true)"
tag="cp$("$py" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')"
for dir in $links; do
  dir="${dir#file://}"
  for wheel in "$dir"/torch-*+cpu-"$tag"-*.whl; do
    [ -f "$wheel" ] || continue
    version="$(basename "$wheel" | cut -d- -f2)"
    echo "no GPU: installing the local CPU wheel $wheel"
    exec "$py" -m pip install "torch==${version%%+*}"
  done
done
echo "no GPU: installing torch from PyTorch's CPU index"
exec "$py" -m pip install torch --index-url https://download.pytorch.org/whl/cpu --extra-index-url https://pypi.org/simple
