#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set-up, PostgreSQL, lint, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
scripts/postgres.sh
scripts/chromium.sh
echo "== ruff"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest "$@"
