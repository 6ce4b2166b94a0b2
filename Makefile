.PHONY: demo test bench

# Set up and run the demo on the embedded default (SQLite).
demo:
	scripts/demo.sh

# Set up and run the whole test suite (lint, types, SQLite and PostgreSQL tests).
test:
	scripts/test.sh

bench:
	scripts/setup.sh dev
	.venv/bin/python bench/ingest.py
