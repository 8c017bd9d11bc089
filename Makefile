# The two commands of the README. Both set up what they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What is installed, for which pyproject.toml: `run` needs the runtime dependencies alone,
# `test` and `lint` the development extras too (Playwright, mypy, pytest, the API clients).
SUM := $(shell cksum pyproject.toml | cut -d' ' -f1)
RUNTIME := $(VENV)/.installed-runtime-$(SUM)
DEV := $(VENV)/.installed-dev-$(SUM)
# The browser the end-to-end tests of the moderator pages drive (tests/web): Debian's Chromium,
# or any Chromium or Chrome named here (CHROMIUM=/path/to/chrome make test).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint bench-model bench-pipeline clean

# A venv with the development extras has every runtime dependency too, so `run` after `test`
# installs nothing.
$(RUNTIME): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	rm -f $(VENV)/.installed-runtime-*
	touch $@

$(DEV): $(RUNTIME)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-dev-*
	touch $@

# Installed once; when the binary is there this is a file check and nothing more. Playwright's
# own browser download is never used: it needs a network this project may not have.
$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "no $(CHROMIUM) and no apt-get: install Chromium and run 'make test CHROMIUM=/path/to/it'"; exit 1; }
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium \
	  || { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium; }

## Set up and start the service on its embedded default (Redis, SQLite, worker, API), with
## the runtime dependencies only.
run: $(RUNTIME)
	$(BIN)/moderation up

## Set up and run the whole suite: everything `make lint` checks, then unit, integration and
## browser tests.
test: lint $(CHROMIUM)
	MODERATION_TEST_CHROMIUM=$(CHROMIUM) MODERATION_TEST_REQUIRE_BROWSER=1 $(BIN)/pytest -q

## The static checks alone, in seconds: lint, format, import layers, declared dependencies,
## types.
lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/deptry .
	$(BIN)/mypy

bench-model: $(DEV)
	$(BIN)/python -m bench.model

bench-pipeline: $(DEV)
	$(BIN)/python -m bench.pipeline

clean:
	rm -rf var .pytest_cache
