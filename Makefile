# Arrears: `make run` serves on SQLite, `make test` runs the whole suite.
# Both create the virtual environment on first use; nothing else is needed.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Databases the suite runs on (comma-separated): make test DBS=sqlite
DBS    ?= sqlite,postgresql
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint typecheck unit bench client modules clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

run: $(BIN)/.installed
	$(BIN)/arrears db upgrade
	@echo
	@echo "Arrears is starting on http://$(HOST):$(PORT) (SQLite: ./arrears.db)."
	@echo "Get an API key, in another terminal:   $(BIN)/arrears sellers create --name Acme"
	@echo "Then check it:  curl -i -H 'Authorization: Bearer <apiKey>' http://$(HOST):$(PORT)/api/v1/customers"
	@echo "(200 and [] for a good key, 401 for a wrong one; another port: make run PORT=8080)"
	@echo "Or open http://$(HOST):$(PORT)/console and sign in with the key."
	@echo
	ARREARS_LOG_FORMAT=$${ARREARS_LOG_FORMAT:-text} $(BIN)/arrears serve --host $(HOST) --port $(PORT)

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests scripts
	$(BIN)/ruff format --check src tests scripts

typecheck: $(BIN)/.installed
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest --db=$(DBS)

unit: $(BIN)/.installed
	$(BIN)/pytest tests/unit

# The sync client is generated from the async one; tests/unit/test_client_generated.py
# fails while the generated file is not current.
client: $(BIN)/.installed
	$(BIN)/python scripts/sync_client.py

# docs/architecture.md's table of modules, from their docstrings (checked by a unit test).
modules: $(BIN)/.installed
	$(BIN)/python scripts/module_table.py

bench: $(BIN)/.installed
	@ls bench/bench_*.py >/dev/null 2>&1 || { echo "no benchmarks yet"; exit 0; }; \
	for script in bench/bench_*.py; do $(BIN)/python $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
