# The two commands of the README. Both set up what they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
# The browser the end-to-end tests of the moderator pages drive (tests/web): Debian's Chromium,
# or any Chromium or Chrome named here (CHROMIUM=/path/to/chrome make test).
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint bench-model bench-pipeline clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# Installed once; when the binary is there this is a file check and nothing more. Playwright's
# own browser download is never used: it needs a network this project may not have.
$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "no $(CHROMIUM) and no apt-get: install Chromium and run 'make test CHROMIUM=/path/to/it'"; exit 1; }
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium \
	  || { $(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium; }

## Set up and start the service on its embedded default (Redis, SQLite, worker, API).
run: $(STAMP)
	$(BIN)/moderation up

## Set up and run the whole suite: everything `make lint` checks, then unit, integration and
## browser tests.
test: lint $(CHROMIUM)
	MODERATION_TEST_CHROMIUM=$(CHROMIUM) MODERATION_TEST_REQUIRE_BROWSER=1 $(BIN)/pytest -q

## The static checks alone, in seconds: lint, format, import layers, types.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

bench-model: $(STAMP)
	$(BIN)/python -m bench.model

bench-pipeline: $(STAMP)
	$(BIN)/python -m bench.pipeline

clean:
	rm -rf var .pytest_cache
