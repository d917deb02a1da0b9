# The two set-up commands of the README: `make run` and `make test`. Each creates .venv and
# installs what it needs, so both work on a fresh clone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test test-all lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/waymark demo

# One pytest-xdist worker per core, a test file per worker at a time (its fixtures built once).
TEST_WORKERS ?= auto

test: $(VENV)/.installed-test
	$(BIN)/pytest -m "not slow and not spark" -n $(TEST_WORKERS) --dist loadfile

test-all: $(VENV)/.installed-test
	$(BIN)/pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(VENV)/.installed-test
	$(BIN)/python bench/bench_data.py

clean:
	rm -rf $(VENV) demo .pytest_cache .mypy_cache .ruff_cache
