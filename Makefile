# streamagg developer tasks. `make` lists them.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.streamagg-installed
KAFKA_LOCAL := deploy/kafka/kafka-local
SOURCES := streamagg tests bench

.PHONY: help install format lint openapi typecheck test-unit test chaos broker-start broker-stop broker-status bench demo

help: ## List the targets
	@echo "usage: make <target>"
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(STAMP) ## Create .venv (Python 3.11+), pip install -e '.[dev]', fetch the Kafka jars
	@$(KAFKA_LOCAL) fetch

# Re-run pip only when the package metadata changes.
$(STAMP): pyproject.toml
	@if [[ ! -x $(BIN)/python ]]; then \
	  py=""; \
	  for candidate in python3.13 python3.12 python3.11 python3; do \
	    if command -v $$candidate >/dev/null && \
	       $$candidate -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
	      py=$$candidate; break; \
	    fi; \
	  done; \
	  if [[ -z "$$py" ]]; then echo "make install: error: Python 3.11+ not found" >&2; exit 1; fi; \
	  echo "creating $(VENV) with $$($$py --version)"; \
	  $$py -m venv $(VENV); \
	fi
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "make install: error: $(VENV) has Python < 3.11; remove it and retry" >&2; exit 1; }
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

format: $(STAMP) ## ruff format + ruff check --fix (what `make lint` checks)
	$(BIN)/ruff format $(SOURCES)
	$(BIN)/ruff check --fix $(SOURCES)

openapi: $(STAMP) ## Write streamagg/web/openapi.yaml from openapi_base.yaml and the reports
	$(BIN)/python -m streamagg.web.openapi

lint: $(STAMP) ## ruff check + ruff format --check
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

typecheck: $(STAMP) ## mypy (settings in pyproject.toml)
	$(BIN)/mypy

test-unit: $(STAMP) ## The unit tests only: no broker, no jars, under a minute
	$(BIN)/pytest tests/unit -q

test: install ## Run all tests (starts a private broker unless STREAMAGG_TEST_BROKER=host:port)
	$(BIN)/pytest tests -q

# `make chaos` runs the CI seeds; SEEDS=50 runs seeds 1..50 (SEED_START moves the first);
# SEED=1234 replays one seed. Each scenario runs its own broker; a table closes the run.
chaos: install ## Randomized fault-injection scenarios (SEEDS=N, SEED=S, SEED_START=F)
	STREAMAGG_CHAOS_SEEDS=$(SEEDS) STREAMAGG_CHAOS_SEED=$(SEED) \
	  STREAMAGG_CHAOS_SEED_START=$(SEED_START) $(BIN)/pytest tests/chaos -q -p no:cacheprovider \
	  -k "$(if $(or $(SEEDS),$(SEED)),random_scenario,)"

broker-start: ## Start the local Kafka broker (KAFKA_PORT, KAFKA_DIR; default 9092, .kafka)
	@$(KAFKA_LOCAL) start

broker-stop: ## Stop the local Kafka broker
	@$(KAFKA_LOCAL) stop

broker-status: ## Is the local Kafka broker running?
	@$(KAFKA_LOCAL) status

bench: install ## Run the benchmark (writes BENCHMARKS.md; --quick via BENCH_ARGS=--quick)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev,bench]'
	$(BIN)/python -m bench $(BENCH_ARGS)

demo: install ## Run the end-to-end demo (broker, workers, generator, web page)
	bash deploy/demo/run-demo
