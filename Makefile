# Brief — every target sets up what it needs (.venv, packages, local services) by itself.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit functional integration e2e clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## demo: run one research job with five bundled sources on the local stack, offline.
demo: $(STAMP)
	$(BIN)/brief demo

## test: lint, type-check and run the whole suite (unit, functional, integration, e2e).
test: lint typecheck
	@$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: a failure here" >&2; exit 1; fi; \
	exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit functional integration e2e: $(STAMP)
	$(BIN)/python -m pytest tests/$@

clean:
	rm -rf $(VENV) .aws-sam .mypy_cache .ruff_cache .pytest_cache
