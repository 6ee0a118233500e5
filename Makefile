# windpipe: `make up` starts everything, `make test` runs every check CI runs.
# Only Python 3 is needed beforehand: uv is bootstrapped into .tools/ when it is not on PATH.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
RUN := $(UV) run --frozen

.PHONY: up test test-compose check lint fmt bench sync clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet uv

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --compile-bytecode --extra embedded --extra docker
	@touch $@

sync: .venv/.synced  ## install the locked dependencies into .venv

up: sync  ## start PostgreSQL (embedded), seed, API :8000, Dagster :3000 — Ctrl-C stops all
	$(RUN) windpipe up

check: sync  ## lint, format check, type check and the import-layer contracts
	$(RUN) ruff check src tests bench
	$(RUN) ruff format --check src tests bench
	$(RUN) mypy src
	$(RUN) lint-imports

test: check  ## checks, then the whole test suite against a real (embedded) PostgreSQL
	$(RUN) pytest

test-compose: sync  ## only the end-to-end compose test (builds the image; needs a Docker engine)
	$(RUN) pytest -m compose tests/deploy

fmt: sync
	$(RUN) ruff check --fix src tests bench
	$(RUN) ruff format src tests bench

bench: sync  ## side-by-side benchmarks (API formats, ETL paths, the fleet, load, changes, workers)
	$(RUN) python bench/api.py
	$(RUN) python bench/etl.py
	$(RUN) python bench/fleet.py
	$(RUN) python bench/load.py
	$(RUN) python bench/changes.py
	$(RUN) python bench/workers.py
	$(RUN) python bench/kinds.py

clean:
	-$(RUN) windpipe db stop
	rm -rf .windpipe .venv .tools
