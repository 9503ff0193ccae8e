# make test: lint, then the whole test suite against real MariaDB servers.
# make demo: a local source/target pair with a write load, watched by encmond.
# Both create .venv and install what is missing on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SOURCES := encmond plugins tests scripts

.PHONY: test lint format demo system-packages clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

system-packages:
	scripts/ensure-system-packages

lint: $(STAMP)
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

format: $(STAMP)
	$(BIN)/ruff format $(SOURCES)
	$(BIN)/ruff check --fix $(SOURCES)

test: system-packages lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

demo: system-packages $(STAMP)
	$(BIN)/python scripts/demo.py

clean:
	rm -rf $(VENV) build dist *.egg-info .demo test-artifacts
