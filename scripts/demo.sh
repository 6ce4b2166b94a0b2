#!/usr/bin/env bash
# Set up, then run the demo on the embedded default (SQLite under $ASSAY_HOME, ~/.assay).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh server
exec .venv/bin/assay demo "$@"
