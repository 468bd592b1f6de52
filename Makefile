# The two commands:  `make demo` (whole pipeline on the embedded defaults)  and  `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export OMP_NUM_THREADS ?= 1
# Where PYTHONDONTWRITEBYTECODE is set (as on these machines), no process would write a .pyc: every test worker,
# kernel and server would compile pandas, dbt, ... from source again. Here the first import of a module writes it.
unexport PYTHONDONTWRITEBYTECODE
# uv: copy from its cache (the cache and the venv may be on two filesystems), the system's certificates
export UV_LINK_MODE ?= copy
export UV_SYSTEM_CERTS ?= 1
# the demo storefronts, database and apps are on loopback: never send those requests to a proxy
export NO_PROXY := 127.0.0.1,localhost,::1,$(NO_PROXY)

.PHONY: demo test test-fast lint install chromium apps api lab bench db-start db-stop demo-down clean-data oj-report pricing-report \
	airflow-venv airflow-venv-try

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# uv installs into the venvs: it downloads in parallel (pip, one wheel after another, took 130-160 s of the
# install; uv 25 s from an empty cache). uv reads none of pip's settings: where it cannot install (an index or
# certificates only pip.conf names), pip does, at the same versions.
UV_VERSION := 0.13.10
$(BIN)/uv: | $(BIN)/python
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"

# at the versions the test suite last passed with (deploy/constraints.txt: they pin, they add nothing; docs/deploy.md
# says how to regenerate it). No bytecode at install: a process writes the .pyc of what it imports (below).
$(STAMP): pyproject.toml deploy/constraints.txt | $(BIN)/uv
	$(BIN)/uv pip install --python $(BIN)/python -q --constraint deploy/constraints.txt -e ".[dev]" \
	  || $(BIN)/python -m pip install -q --constraint deploy/constraints.txt -e ".[dev]"
	touch $@

install: $(STAMP)

## make airflow-venv: Apache Airflow in a virtualenv of its own, .venv-airflow (never in .venv: it would change
## fastapi and others there), at the versions of deploy/airflow-constraints.txt (resolved on Python 3.11; `pip
## check` must pass). tests/pipeline/test_airflow.py imports the exported DAG with it (docs/operations.md).
AIRFLOW_VENV ?= .venv-airflow
AIRFLOW_VERSION := 3.3.2
AIRFLOW_CONSTRAINTS := deploy/airflow-constraints.txt
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.installed

$(AIRFLOW_STAMP): $(AIRFLOW_CONSTRAINTS) | $(BIN)/uv
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(BIN)/uv pip install --python $(AIRFLOW_VENV)/bin/python -q --constraint $(AIRFLOW_CONSTRAINTS) "apache-airflow==$(AIRFLOW_VERSION)" \
	  || $(AIRFLOW_VENV)/bin/python -m pip install -q --constraint $(AIRFLOW_CONSTRAINTS) "apache-airflow==$(AIRFLOW_VERSION)"
	$(AIRFLOW_VENV)/bin/python -m pip check
	touch $@

airflow-venv: $(AIRFLOW_STAMP)

# what `make test` builds: Airflow's venv if it installs here; if not, the DAG import test says why and skips
# (after .venv's uv, which both venvs install with: never two makes creating .venv at once)
airflow-venv-try: | $(BIN)/uv
	@$(MAKE) --no-print-directory airflow-venv || echo "make airflow-venv failed: tests/pipeline/test_airflow.py skips"

# Debian's chromium for the browser tests (Playwright drives /usr/bin/chromium; no browser download).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "installing Debian chromium (needed by the app tests)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null \
	  || { echo "error: could not install Debian package chromium; install it and re-run"; exit 1; }; \
	fi

## make demo: install, start embedded PostgreSQL and the demo storefronts, run the pipeline, print results
demo: install
	$(BIN)/priceintel init-db
	$(BIN)/priceintel demo up
	$(BIN)/priceintel run
	$(BIN)/priceintel summary

## make test: install (dev extra + chromium; beside them, at the same time, Airflow's own venv for the DAG import
## test), then pytest with coverage of src/, two workers (one per core; a test file stays on one worker, so its
## module fixtures are built once)
test:
	$(MAKE) -j3 install chromium airflow-venv-try
	$(BIN)/python -m pytest -n 2 --dist loadfile --cov=priceintel --cov-report=term --cov-report=xml:reports/coverage.xml --cov-fail-under=80

## make test-fast: the quick tests (no pipeline run, no browser), under 2 minutes; no coverage threshold
test-fast: install chromium
	$(BIN)/python -m pytest -m "not slow" -q

## make lint: ruff (lint + format check), the layer contract and mypy on src/
lint: install
	$(BIN)/ruff check src
	$(BIN)/ruff format --check src
	$(BIN)/lint-imports
	$(BIN)/mypy

apps: install
	$(BIN)/priceintel apps

## make api: the REST API on http://127.0.0.1:8000 (OpenAPI docs at /docs; keys: priceintel keys create NAME)
api: install
	$(BIN)/priceintel api $(ARGS)

## make lab: JupyterLab on notebooks/ (loopback, token; DATABASE_URL = the workbench database; as root too)
lab: install
	$(BIN)/priceintel lab $(ARGS)

## make oj-report: Dominick's orange-juice elasticities beside the published values -> reports/oj-elasticity.html
oj-report: install
	$(BIN)/python -m priceintel.pipeline.render notebooks/oj-elasticity.py reports/oj-elasticity.html

## make pricing-report: elasticities, recommendations, positioning, promotions on the demo world -> reports/pricing-analytics.html
pricing-report: install
	$(BIN)/python -m priceintel.pipeline.render notebooks/pricing-analytics.py reports/pricing-analytics.html

bench: install
	$(BIN)/python benchmarks/run.py $(ARGS)

db-start: install
	$(BIN)/priceintel db start

db-stop:
	$(BIN)/priceintel db stop

demo-down:
	$(BIN)/priceintel demo down

## make deploy-check: hadolint on the Dockerfile; terraform fmt, then init (offline from TF_PLUGIN_DIR when that
## mirror exists), validate and test (mocked provider) in a temporary copy of deploy/terraform (docs/deploy.md)
.PHONY: deploy-check
deploy-check: install
	$(BIN)/hadolint --failure-threshold warning Dockerfile
	terraform -chdir=deploy/terraform fmt -check -recursive
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && cp -r deploy/terraform/. "$$tmp" && rm -rf "$$tmp/.terraform" && \
	plugins=$${TF_PLUGIN_DIR:-/opt/tf-plugins} && \
	if [ -d "$$plugins" ]; then init_args="-plugin-dir=$$plugins"; else init_args=""; fi && \
	terraform -chdir="$$tmp" init -backend=false -input=false $$init_args >/dev/null && \
	terraform -chdir="$$tmp" validate && terraform -chdir="$$tmp" test
