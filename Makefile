# Two commands do everything: `make run` and `make test`. Both create and use .venv/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint types unit bench clean browser

# Each step says what it does before it does it: a fresh clone takes minutes, mostly the install.
$(STAMP): pyproject.toml
	@echo "==> [1/5] Python environment in $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> [2/5] installing the gateway and its test tools into $(VENV) (the longest step on a fresh clone)"
	@$(BIN)/python -m pip install --quiet --upgrade pip
	@$(BIN)/python -m pip install --quiet --progress-bar off -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	@echo "==> [3/5] checking the configuration (config/lvv)"
	@$(BIN)/gateway config check
	@echo "==> [4/5] demo: keys, database schema, demo clients and synthetic participants (var/)"
	@$(BIN)/gateway demo init
	@echo "==> [5/5] starting the server (Ctrl-C stops it)"
	@$(BIN)/gateway serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check gateway tests bench

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest tests/unit -q

# Browser tests use Debian's chromium; install it when missing and we can (never a downloaded browser).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
	      || echo "could not install chromium; browser tests will skip (and fail under CI)"; \
	  else echo "chromium missing and cannot be installed here; browser tests will skip (fail under CI)"; fi; }

# The suite runs in 2 worker processes (pytest-xdist); `make test WORKERS=0` runs it in one process.
WORKERS ?= 2

test: $(STAMP) browser
	$(BIN)/gateway config check
	$(BIN)/gateway dpia check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check gateway tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q -n $(WORKERS)

bench: $(STAMP)
	$(BIN)/python bench/bench_policy.py
	$(BIN)/python bench/bench_exchange.py

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis test-artifacts
