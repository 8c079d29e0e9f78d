# Brief — every target sets up what it needs (.venv, packages, local services) by itself.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# Deploy tools live in a venv of their own (inside .venv, so git and ruff ignore it): the
# AWS SAM CLI, and cfn-lint pinned at a release that still lints SAM resources through the
# SAM translator (1.53.x reports a wrong Runtime, FunctionResponseTypes or GetAtt on an
# AWS::Serverless::Function; 1.58 lets all three through).
SAM_CLI_VERSION := 1.170.0
CFN_LINT_VERSION := 1.53.3
TOOLS := $(VENV)/tools
TOOLS_STAMP := $(TOOLS)/.installed-$(SAM_CLI_VERSION)-$(CFN_LINT_VERSION)
SAM := $(TOOLS)/bin/sam
export SAM_CLI_TELEMETRY := 0

# The functions' runtime, for `sam build` without a container: python3.12 on PATH, else
# pyenv's newest 3.12. SAM looks for `python3.12` on PATH, so its directory goes first.
PY312 ?= $(shell python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null || \
	PYENV_VERSION=$$(pyenv latest 3.12 2>/dev/null) pyenv which python3.12 2>/dev/null)
BUILD_DIR := .aws-sam/build

.PHONY: demo test bench chaos lint typecheck unit functional integration e2e build validate invoke tools chromium clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

$(TOOLS_STAMP):
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet \
		'aws-sam-cli==$(SAM_CLI_VERSION)' 'cfn-lint==$(CFN_LINT_VERSION)'
	@rm -f $(TOOLS)/.installed-* && touch $(TOOLS_STAMP)

## tools: the SAM CLI and the pinned cfn-lint, in .venv/tools.
tools: $(TOOLS_STAMP)

## demo: run one research job with five bundled sources on the local stack, offline.
demo: $(STAMP)
	$(BIN)/brief demo

## test: lint, type-check, build and validate the stack, then run the whole suite.
test: lint typecheck build validate chromium
	@$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: a failure here" >&2; exit 1; fi; \
	exit $$rc

## bench: Brief's critical path vs a sequential and an asyncio.gather baseline, scale, cold
## starts, warm overhead, caches and a 429 storm, on the local stack. Figures in
## bench-results/ (BENCH_JOBS=20 for a shorter run).
bench: $(STAMP)
	$(BIN)/python -m bench.run

## chaos: CHAOS_JOBS jobs (default 200) through the local stack's API under seeded faults
## (workers killed before their acks, duplicate deliveries, S3/SQS errors, model 429/500/
## timeouts/cuts, page timeouts/resets); prints a ledger, fails if an invariant breaks.
CHAOS_JOBS ?= 200
CHAOS_SEED ?= 1
chaos: $(STAMP)
	$(BIN)/brief chaos --jobs $(CHAOS_JOBS) --seed $(CHAOS_SEED)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit functional integration e2e: $(STAMP)
	$(BIN)/python -m pytest tests/$@

e2e: chromium

## chromium: Debian's headless Chromium for the browser tests (tests/e2e/test_web.py), driven
## by Playwright through its executable_path (Playwright's own browser downloads are never
## used). Installed once, when missing; needs root, as `make test` runs here and in CI.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
		echo "chromium: installing Debian's chromium and chromium-driver"; \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

## build: `sam build` without a container (python3.12 from PATH or pyenv), then compile
## every module to bytecode for python3.12. Hash-based .pyc: SAM zips files with 1980
## timestamps, which would make timestamp-based .pyc stale in Lambda (and /var/task is
## read-only, so Python would recompile on every cold start and keep nothing).
build: $(TOOLS_STAMP)
	@test -n "$(PY312)" || { echo "build: python3.12 not found (PATH or pyenv)" >&2; exit 1; }
	PATH="$(dir $(PY312)):$$PATH" $(SAM) build --cached --build-dir $(BUILD_DIR)
	$(PY312) -m compileall -q -j 0 --invalidation-mode unchecked-hash $(BUILD_DIR)
	@$(PY312) -c 'import pathlib, shutil, sys, tempfile; \
	layer = pathlib.Path(sys.argv[1]); \
	size = sum(p.stat().st_size for p in layer.rglob("*") if p.is_file()); \
	zipped = pathlib.Path(shutil.make_archive(tempfile.mkdtemp() + "/layer", "zip", layer)); \
	print(f"CoreLayer: {size / 2**20:.1f} MiB unzipped (Lambda allows 250 MB with the function), " \
	      f"{zipped.stat().st_size / 2**20:.1f} MiB zipped"); \
	shutil.rmtree(zipped.parent)' $(BUILD_DIR)/CoreLayer

## validate: SAM's own template validation with its linter, then cfn-lint on the SAM template.
validate: $(TOOLS_STAMP)
	$(SAM) validate --lint --template template.yaml --region us-east-1
	$(TOOLS)/bin/cfn-lint template.yaml

## invoke: run one function under AWS's runtime interface client, without Docker, e.g.
##   make invoke FUNCTION=ApiFunction EVENT=tests/events/api-get-job.json
invoke: $(STAMP)
	@test -n "$(FUNCTION)" || { echo "invoke: FUNCTION=<logical id> is required" >&2; exit 2; }
	$(BIN)/python -m brief_local.invoke $(FUNCTION) $(if $(EVENT),-e $(EVENT))

clean:
	rm -rf $(VENV) .aws-sam .mypy_cache .ruff_cache .pytest_cache bench-results
