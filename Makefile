# gochat-py — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
COMPOSE ?= docker compose
ACTION ?= up
VERSION ?=
# Examples per REST operation or frame family in `make fuzz` (`make test` draws 25).
GOCHAT_FUZZ_EXAMPLES ?= 500

.DEFAULT_GOAL := help
.PHONY: help venv system-deps dev run test fuzz bench lint fmt migrate seed docker-up docker-down docker-build clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	@touch $(STAMP)

venv: $(STAMP) ## create .venv and install the project with its dev and bench tools

system-deps: ## install redis-server / PostgreSQL if missing (apt-get), or say what to install
	@scripts/system-deps.sh

dev: venv system-deps ## run PostgreSQL, Redis and the server with hot reload (Ctrl-C stops all)
	$(BIN)/python -m gochat_py.devstack run --reload

run: venv system-deps ## the same without hot reload
	$(BIN)/python -m gochat_py.devstack run

test: venv system-deps ## run the test suite (starts its own PostgreSQL and Redis)
	$(BIN)/python -m pytest

fuzz: venv system-deps ## the fuzz tests (tests/fuzz/) with many new examples: GOCHAT_FUZZ_EXAMPLES=500
	GOCHAT_FUZZ_EXAMPLES=$(GOCHAT_FUZZ_EXAMPLES) GOCHAT_FUZZ_RANDOM=1 $(BIN)/python -m pytest tests/fuzz

bench: venv system-deps ## every benchmark against its baselines (docs/BENCHMARKS.md), ~22 min
	$(BIN)/python -m bench

lint: venv ## ruff check, ruff format --check, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: venv ## format and auto-fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrate: venv system-deps ## apply migrations: ACTION=up|down|status VERSION=n
	$(BIN)/python -m gochat_py.devstack migrate $(ACTION) $(VERSION)

seed: venv system-deps ## demo users alice, bob, carol (password123) and two conversations
	$(BIN)/python -m gochat_py.devstack seed

docker-up: ## PostgreSQL 16, Redis 7 (AOF), the API and the worker in containers
	$(COMPOSE) up -d --build

docker-down: ## stop the containers
	$(COMPOSE) down

docker-build: ## build the image
	docker build -t gochat-py .

clean: ## remove the venv and caches (keeps .data/; rm -rf .data resets the local stack)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
