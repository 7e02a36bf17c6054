# marketo_assets — the README's commands. Works with only python3, pip and make:
# uv is bootstrapped into .tools/ when it is not on PATH.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export DAGSTER_HOME ?= $(CURDIR)/dagster_home

.PHONY: setup test lint check demo dev bench bench-quick manifest clean

$(CURDIR)/.tools/bin/uv:
	$(PYTHON) -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet uv

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	touch $@

setup: .venv/.synced

lint: setup
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen lint-imports
	$(UV) run --frozen mypy marketo_assets

# The fast loop while editing: lint, types, layer contracts and the unit tests (no servers, no
# Dagster runs; one pytest worker per core). `make test` is the whole suite.
check: lint
	$(UV) run --frozen pytest -q -n auto marketo_assets_tests/unit

manifest: setup
	$(UV) run --frozen python -m marketo_assets.transform.manifest

# Two workers (pytest-xdist), one test file each at a time: most tests wait on the simulator,
# Dagster's daemon or a subprocess, so two cores overlap them. PYTEST_ARGS="-n 0" runs serially.
test: setup manifest
	$(UV) run --frozen ruff check .
	$(UV) run --frozen pytest -n 2 --dist loadfile $(PYTEST_ARGS)

demo: setup manifest
	$(UV) run --frozen python -m marketo_assets.local.demo

dev: setup manifest
	$(UV) run --frozen python -m marketo_assets.local.dev

bench: setup
	$(UV) run --frozen python -m bench.run

bench-quick: setup
	$(UV) run --frozen python -m bench.run --quick

clean:
	rm -rf data dagster_home/storage dagster_home/history dagster_home/schedules dagster_home/logs \
	  dbt_project/target dbt_project/logs bench/results test-artifacts
