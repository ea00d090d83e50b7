# Two commands for a fresh machine: `make demo` and `make test`.
# Each bootstraps .venv from pyproject.toml when it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean-venv

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m xts_pipeline.demo

test: $(STAMP)
	$(BIN)/ruff check xts_pipeline assets checks tests bench
	$(BIN)/python -c "import dagster as dg; from xts_pipeline.definitions import defs; dg.Definitions.validate_loadable(defs); print('definitions load')"
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check xts_pipeline assets checks tests bench

bench: $(STAMP)
	for f in bench/*.py; do $(BIN)/python $$f || exit 1; done

clean-venv:
	rm -rf $(VENV)
