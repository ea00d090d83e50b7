# Two commands for a fresh machine: `make demo` and `make test` (the fast loop; `make test-all` is everything).
# Each bootstraps .venv from pyproject.toml when it is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-all lint definitions bench bench-mesh browser-deps clean-venv

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
	$(BIN)/python -m assets.demo $(if $(CONFIG),--config '$(CONFIG)')

# The fast loop: lint, the definitions load, the architecture tests and the unit tests (pure code, private
# DuckDB files; no sandbox, no Dagster instance, nothing marked slow). Test groups are set in tests/conftest.py.
test: lint definitions
	$(BIN)/python -m pytest -m "(architecture or unit) and not slow"

# The whole suite (what .ci/run runs): sandbox over HTTPS, Dagster runs, end-to-end and browser tests.
test-all: lint definitions
	$(BIN)/python -m pytest

definitions: $(STAMP)
	$(BIN)/python -c "import dagster as dg; from assets.definitions import defs; dg.Definitions.validate_loadable(defs()); print('definitions load')"

# Style, then the import contracts in pyproject.toml ([tool.importlinter]): the domain imports no Dagster.
lint: $(STAMP)
	$(BIN)/ruff check xts_pipeline assets checks tests bench
	$(BIN)/lint-imports

# Every bench runs even when one misses its goal; the target fails at the end if any did. The commit, date and
# load printed at start and end are what a README footnote quotes. The mesh cycle bench (90 pairs, ~5 min) has
# no goal and its own target, bench-mesh: its figures are docs/pipeline.md's "How the cost grows".
BENCHES = $(filter-out bench/mesh_cycle_bench.py,$(wildcard bench/*.py))
bench: $(STAMP)
	@echo "bench start: commit $$(git rev-parse HEAD 2>/dev/null || echo unknown), $$(date -u '+%Y-%m-%d %H:%M:%S UTC'), load:$$(uptime | sed 's/.*load average//')"
	@failed=""; for f in $(BENCHES); do \
	  echo "== $$f"; \
	  $(BIN)/python $$f || { echo "== $$f exited $$?"; failed="$$failed $$f"; }; \
	done; \
	echo "bench end: commit $$(git rev-parse HEAD 2>/dev/null || echo unknown), $$(date -u '+%Y-%m-%d %H:%M:%S UTC'), load:$$(uptime | sed 's/.*load average//')"; \
	if [ -n "$$failed" ]; then echo "benches that missed a goal or failed:$$failed"; exit 1; fi; echo "every bench met its goals"

bench-mesh: $(STAMP)
	$(BIN)/python bench/mesh_cycle_bench.py

# Headless Chromium from Debian's packages for the browser test of the UI (tests/test_ui_browser.py, marked
# slow; it skips without Chromium unless XTS_REQUIRE_BROWSER=1, which .ci/run sets). Needs root or sudo.
CHROMIUM ?= /usr/bin/chromium
browser-deps:
	@if [ -x $(CHROMIUM) ]; then echo "chromium: $$($(CHROMIUM) --version 2>/dev/null | head -1)"; else \
	  echo "installing Debian's chromium for the browser test (once) ..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
	    || { $$SUDO apt-get update -q && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y \
	         --no-install-recommends chromium; }; fi

clean-venv:
	rm -rf $(VENV)
