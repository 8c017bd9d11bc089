# The two commands of the README. Both set up what they need on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test lint bench-model bench-pipeline clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

## Set up and start the service on its embedded default (Redis, SQLite, worker, API).
run: $(STAMP)
	$(BIN)/moderation up

## Set up and run the whole suite: lint, import contracts, unit and integration tests.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports

bench-model: $(STAMP)
	$(BIN)/python bench/model.py

bench-pipeline: $(STAMP)
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf var .pytest_cache
