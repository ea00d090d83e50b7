# Two commands for a fresh machine: `make demo` and `make test`.
# Each bootstraps .venv from pyproject.toml when it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean-venv

# CONFIG=my-topology.yaml serves the demo (sync cycle + UI) over your own topology on the sandbox.
CONFIG ?=

$(STAMP): pyproject.toml
	@echo "[1/3] creating the virtual environment $(VENV) (once) ..."
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@echo "[2/3] upgrading pip ..."
	$(BIN)/python -m pip install --progress-bar on --upgrade pip
	@echo "[3/3] installing xts_pipeline and its dependencies (Dagster, DuckDB, Great Expectations: a few minutes the first time) ..."
	$(BIN)/python -m pip install --progress-bar on -e '.[dev]'
	touch $(STAMP)
	@echo "installed; next time this step is skipped until pyproject.toml changes"

demo: $(STAMP)
	$(BIN)/python -m xts_pipeline.demo $(if $(CONFIG),--config '$(CONFIG)')

test: $(STAMP)
	$(BIN)/ruff check xts_pipeline assets checks tests bench
	$(BIN)/python -c "import dagster as dg; from xts_pipeline.definitions import defs; dg.Definitions.validate_loadable(defs); print('definitions load')"
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check xts_pipeline assets checks tests bench

# Every bench runs even when one misses its goal; the target fails at the end if any did. The commit, date and
# load printed at start and end are what a README footnote quotes.
bench: $(STAMP)
	@echo "bench start: commit $$(git rev-parse HEAD 2>/dev/null || echo unknown), $$(date -u '+%Y-%m-%d %H:%M:%S UTC'), load:$$(uptime | sed 's/.*load average//')"
	@failed=""; for f in bench/*.py; do \
	  echo "== $$f"; \
	  $(BIN)/python $$f || { echo "== $$f exited $$?"; failed="$$failed $$f"; }; \
	done; \
	echo "bench end: commit $$(git rev-parse HEAD 2>/dev/null || echo unknown), $$(date -u '+%Y-%m-%d %H:%M:%S UTC'), load:$$(uptime | sed 's/.*load average//')"; \
	if [ -n "$$failed" ]; then echo "benches that missed a goal or failed:$$failed"; exit 1; fi; echo "every bench met its goals"

clean-venv:
	rm -rf $(VENV)
