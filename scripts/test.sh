#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set-up, PostgreSQL, lint, types, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev

# mypy checks src, tests and bench (the files in pyproject.toml): on a cold cache (a fresh set-up)
# it takes about 25 s of one CPU, most of it reading the libraries the tests use, 1 s when warm.
# It runs in the background while PostgreSQL, chromium and the tests run (they leave CPU time to
# spare), and its verdict is printed after theirs.
mypy_log="$(mktemp)"
.venv/bin/mypy >"$mypy_log" 2>&1 &
mypy_pid=$!
cleanup() {
  if [ -n "$mypy_pid" ]; then kill "$mypy_pid" 2>/dev/null || true; fi
  rm -f "$mypy_log"
}
trap cleanup EXIT

scripts/postgres.sh
scripts/chromium.sh
echo "== ruff"
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
echo "== pytest"
# In parallel, one worker per CPU (at most 4: each one opens its own databases, servers and
# browser); every test has its own database and port. ASSAY_TEST_WORKERS=0 runs them in this
# process, one after another.
status=0
.venv/bin/python -m pytest -n "${ASSAY_TEST_WORKERS:-auto}" --maxprocesses 4 "$@" || status=$?
echo "== mypy"
mypy_status=0
wait "$mypy_pid" || mypy_status=$?
mypy_pid=""
cat "$mypy_log"
if [ "$mypy_status" -ne 0 ]; then
  echo "mypy failed" >&2
  status=1
fi
exit "$status"
