# crm-warehouse: every target installs what it needs, so a fresh machine needs only `make demo`
# and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV ?= $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")
CRM := $(UV) run --frozen crm-warehouse
export DAGSTER_HOME ?= $(CURDIR)/data/dagster_home
# The demo's two nights: the last month-end before the data ends, then the last day.
DEMO_FIRST_NIGHT ?= 2026-10-31

.PHONY: help install browsers demo test lint dagster bench clean

help:
	@echo "make demo      install, generate demo extracts, run two nightly runs, show where to look"
	@echo "make test      install (incl. Debian chromium) and run the test suite"
	@echo "make dagster   the Dagster UI and daemon (schedule, sensor) on http://127.0.0.1:3000"
	@echo "make bench     benchmark the pipeline (see docs/benchmarks.md)"
	@echo "make lint      ruff"

# Python 3.11 + uv, then the locked dependencies, then the dbt manifest Dagster reads.
install:
	@command -v python3 >/dev/null || { echo "python3 (3.11) is required"; exit 1; }
	@if ! command -v uv >/dev/null && [ ! -x "$(HOME)/.local/bin/uv" ]; then \
		echo "Installing uv"; python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv; fi
	$(UV) sync --frozen
	$(UV) run --frozen python -c "from dagster_project.defs.dbt.project import ensure_manifest; ensure_manifest()"

# Debian's chromium for the portal's browser tests (playwright cannot download browsers here).
browsers:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "Installing Debian chromium"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] && echo "" || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; \
	fi

demo: install
	$(CRM) demo-data
	@echo "== Night 1: as of $(DEMO_FIRST_NIGHT) =="
	$(CRM) run --as-of $(DEMO_FIRST_NIGHT)
	@echo "== Night 2: the latest extracts =="
	$(CRM) run
	@echo "== The churn champion against the generator's ground truth (never read by the pipeline) =="
	$(CRM) churn oracle --truth data/ground_truth
	@echo ""
	@echo "Where to look:"
	@echo "  marts for analysts (read-only):  $(UV) run crm-warehouse sql --query 'select * from segment_summary'"
	@echo "  marts documentation:             $(UV) run crm-warehouse docs"
	@echo "  data quality reports:            data/quality/"
	@echo "  models and model cards:          models/churn/, models/clv/"
	@echo "  retention target lists:          data/exports/target_lists/<date>/<team>.csv and manifest.json"
	@echo "  the teams' portal:               printf '%s\\n' 'a long password' | $(UV) run crm-warehouse users add li.na --team north"
	@echo "                                   $(UV) run crm-warehouse serve   (http://127.0.0.1:8000, docs/portal.md)"
	@echo "  rejected rows, load log:         ods.rejected_rows, ods.load_log in data/warehouse/crm.duckdb"
	@echo "  run history, schedule, sensor:   make dagster, then http://127.0.0.1:3000"

test: install browsers
	$(UV) run --frozen pytest

lint: install
	$(UV) run --frozen ruff check dagster_project ml tests

dagster: install
	$(UV) run --frozen python -c "from dagster_project.runner import prepare_instance; prepare_instance()"
	$(UV) run --frozen dagster dev -m dagster_project.definitions --host 127.0.0.1 --port 3000

bench: install
	$(UV) run --frozen --group bench crm-warehouse bench --customers 100000 --days 365

clean:
	rm -rf data/warehouse/*.duckdb* data/exports/target_lists data/dagster_home data/logs dbt/target dbt/logs
