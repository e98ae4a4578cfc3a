# One command per habit. Every target builds its own virtual environment from scratch when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# dlt, the alternative the benchmark measures, lives in a venv of its own: never beside the tests.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: install demo test test-all lint format bench bench-sources clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/syncctl demo

lint: $(STAMP)
	$(BIN)/ruff check syncctl tests bench
	$(BIN)/ruff format --check syncctl tests bench
	$(BIN)/mypy

# Tests run on every core (pytest-xdist); `$(BIN)/pytest` alone runs them in one process, for debugging.
test: lint
	$(BIN)/pytest -n auto

test-all: lint
	$(BIN)/pytest -n auto -m ''

format: $(STAMP)
	$(BIN)/ruff format syncctl tests bench
	$(BIN)/ruff check --fix syncctl tests bench

$(BENCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP)
	$(BIN)/python -m bench.run --dlt-python $(CURDIR)/$(BENCH_VENV)/bin/python $(BENCH_ARGS)

# The other sources' and the reports' benchmarks (figures in bench/SOURCES.md); each takes minutes.
bench-sources: $(STAMP)
	$(BIN)/python -m bench.workorders_bench --files 100000
	$(BIN)/python -m bench.tasks_bench --events 1000000
	$(BIN)/python -m bench.reports_bench
	$(BIN)/python -m bench.grid_bench --measurements 300000,3000000

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .mypy_cache .ruff_cache
