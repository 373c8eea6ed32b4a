# Two commands do everything: `make run` and `make test`. Both create and use .venv/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint types unit bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/gateway config check
	$(BIN)/gateway demo init
	$(BIN)/gateway serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check gateway tests bench

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

test: $(STAMP)
	$(BIN)/gateway config check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check gateway tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/bench_policy.py
	$(BIN)/python bench/bench_exchange.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis test-artifacts
