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
  .venv/bin/python -m pip install --quiet -e ".[${extra}]"
  touch "$stamp"
fi
