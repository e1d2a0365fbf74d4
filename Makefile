# The two entry points the README names: `make demo` (main job) and `make test` (CI's suite).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test lint deps bench

$(BIN)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# sslyze pins an older cryptography than pushprov's: its own venv, driven as a program.
$(VENV)/sslyze/bin/sslyze:
	python3 -m venv $(VENV)/sslyze
	$(VENV)/sslyze/bin/pip install -q 'sslyze>=6.3'

deps: $(BIN)/.installed $(VENV)/sslyze/bin/sslyze
	scripts/system-deps.sh
	npm ci --prefix tests/interop/node --no-audit --no-fund
	npm ci --prefix tests/interop/openpgpjs --no-audit --no-fund

demo: $(BIN)/.installed
	$(BIN)/pushprov rehearse

lint: $(BIN)/.installed
	$(BIN)/ruff check src tests bench fuzz
	$(BIN)/ruff format --check src tests bench fuzz
	$(BIN)/mypy

test: deps lint
	$(BIN)/pytest -q

bench: $(BIN)/.installed
	$(BIN)/python bench/run.py
