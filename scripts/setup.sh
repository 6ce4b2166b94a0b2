#!/usr/bin/env bash
# Idempotent set-up: a virtual environment in .venv with Assay installed (editable) and the
# extra named by $1 (server for the demo, dev for the test suite).
set -euo pipefail
cd "$(dirname "$0")/.."
extra="${1:-server}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
stamp=".venv/.installed-${extra}-$(cat pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # The embeddings extra (part of dev) pulls in torch. Where this machine keeps a CPU-only torch
  # wheel, install it first: pip then keeps it rather than fetch the CUDA build (GBs) from PyPI.
  if [ "$extra" = dev ] || [ "$extra" = embeddings ]; then
    tag="$(.venv/bin/python -c 'import sys; print("cp%d%d" % sys.version_info[:2])')"
    for wheel in /opt/wheels/torch-*+cpu-"$tag"-*.whl; do
      if [ -f "$wheel" ] && ! .venv/bin/python -m pip show --quiet torch >/dev/null 2>&1; then
        .venv/bin/python -m pip install --quiet "$wheel"
      fi
      break
    done
  fi
  .venv/bin/python -m pip install --quiet -e ".[${extra}]"
  touch "$stamp"
fi
