# Brief — every target sets up what it needs (.venv, packages, local services) by itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# What gets installed comes from lock files with hashes, made by uv (`make lock`; `make
# upgrade` moves them to the newest releases); pyproject.toml keeps the ranges Brief works
# with. Each venv is synced to its lock (nothing more, nothing less) whenever the lock changes.
#   requirements/dev.txt               .venv: the project with its [dev] extra (Python 3.11+)
#   requirements/demo.txt              what `make demo` installs: the runtime and the local
#                                      stack ([local]), at the dev lock's versions
#   layers/core/requirements.txt       the CoreLayer that `sam build` installs: pyproject's
#   functions/stream/requirements.txt  dependencies, and StreamFunction's uvicorn, for the
#                                      functions' runtime (python3.12, x86_64, glibc 2.34), at
#                                      the versions of the dev lock: Lambda runs what was tested
#   requirements/tools.txt             .venv/tools: the SAM CLI and cfn-lint
#   requirements/uv.txt                .venv/uv: uv itself, at UV_VERSION
UV_VERSION := 0.13.9
UV := $(VENV)/uv/bin/uv
DEV_LOCK := requirements/dev.txt
DEMO_LOCK := requirements/demo.txt
DEMO_STAMP := $(VENV)/.installed-demo
LAYER_LOCK := layers/core/requirements.txt
STREAM_LOCK := functions/stream/requirements.txt
TOOLS_LOCK := requirements/tools.txt
UV_LOCK := requirements/uv.txt
LOCKS := $(DEV_LOCK) $(DEMO_LOCK) $(LAYER_LOCK) $(STREAM_LOCK) $(TOOLS_LOCK) $(UV_LOCK)
LAMBDA_PLATFORM := --python-version 3.12 --python-platform x86_64-manylinux_2_34
COMPILE = $(UV) pip compile --quiet --generate-hashes --custom-compile-command 'make lock' $(UPGRADE)

# Deploy tools live in a venv of their own (inside .venv, so git and ruff ignore it): the
# AWS SAM CLI, and cfn-lint pinned at a release that still lints SAM resources through the
# SAM translator (1.53.x reports a wrong Runtime, FunctionResponseTypes or GetAtt on an
# AWS::Serverless::Function; 1.58 lets all three through).
SAM_CLI_VERSION := 1.170.0
CFN_LINT_VERSION := 1.53.3
TOOLS := $(VENV)/tools
TOOLS_STAMP := $(TOOLS)/.installed
SAM := $(TOOLS)/bin/sam
export SAM_CLI_TELEMETRY := 0

# The functions' runtime, for `sam build` without a container: python3.12 on PATH, else
# pyenv's newest 3.12. SAM looks for `python3.12` on PATH, so its directory goes first.
PY312 ?= $(shell python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null || \
	PYENV_VERSION=$$(pyenv latest 3.12 2>/dev/null) pyenv which python3.12 2>/dev/null)
BUILD_DIR := .aws-sam/build

.PHONY: demo test bench eval chaos lint typecheck unit functional integration e2e build validate invoke tools lock upgrade chromium clean

# Python 3.11 or newer as $(PYTHON) (python3 unless you say otherwise), or a message that says so.
$(UV): $(UV_LOCK)
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	  echo "Brief needs Python 3.11 or newer as '$(PYTHON)'; found: $$($(PYTHON) --version 2>&1 || echo nothing)." >&2; \
	  echo "Install one, or name it: make $(MAKECMDGOALS) PYTHON=/path/to/python3.12" >&2; exit 1; }
	@test -x $(VENV)/uv/bin/python || $(PYTHON) -m venv $(VENV)/uv
	$(VENV)/uv/bin/python -m pip install --quiet --require-hashes -r $(UV_LOCK)
	@touch $(UV)

$(STAMP): $(DEV_LOCK) pyproject.toml $(UV)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(UV) pip sync --quiet --python $(BIN)/python --require-hashes $(DEV_LOCK)
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

# The demo's subset: installed beside whatever .venv holds (not synced to it), so a full dev
# install stays whole and a later `make test` only adds what the demo lacks.
$(DEMO_STAMP): $(DEMO_LOCK) pyproject.toml $(UV)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(UV) pip install --quiet --python $(BIN)/python --require-hashes -r $(DEMO_LOCK)
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	@touch $(DEMO_STAMP)

$(TOOLS_STAMP): $(TOOLS_LOCK) $(UV)
	@test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(UV) pip sync --quiet --python $(TOOLS)/bin/python --require-hashes $(TOOLS_LOCK)
	@touch $(TOOLS_STAMP)

## tools: the SAM CLI and the pinned cfn-lint, in .venv/tools.
tools: $(TOOLS_STAMP)

## lock: write every lock from pyproject.toml and the pins above, keeping each locked version
## that still fits (run it after changing a dependency); commit the locks with the change.
lock: $(UV)
	$(COMPILE) pyproject.toml --extra dev --universal --python-version 3.11 -o $(DEV_LOCK)
	$(COMPILE) pyproject.toml --extra local --universal --python-version 3.11 -c $(DEV_LOCK) -o $(DEMO_LOCK)
	$(COMPILE) pyproject.toml $(LAMBDA_PLATFORM) -c $(DEV_LOCK) -o $(LAYER_LOCK)
	echo uvicorn | $(COMPILE) - $(LAMBDA_PLATFORM) -c $(DEV_LOCK) -c $(LAYER_LOCK) -o $(STREAM_LOCK)
	printf 'aws-sam-cli==%s\ncfn-lint==%s\n' $(SAM_CLI_VERSION) $(CFN_LINT_VERSION) | \
		$(COMPILE) - --universal --python-version 3.11 -o $(TOOLS_LOCK)
	echo uv==$(UV_VERSION) | $(COMPILE) - --universal -o $(UV_LOCK)

## upgrade: every lock to today's newest releases (within pyproject's ranges and the pins
## above); prints the versions that changed, then runs the whole suite on them (`make test`).
upgrade: $(UV)
	$(MAKE) lock UPGRADE=--upgrade
	@git diff --unified=0 -- $(LOCKS) | grep -E '^[-+][A-Za-z0-9]' || echo "upgrade: no version changed"
	$(MAKE) test

## demo: run one research job with five bundled sources on the local stack, offline.
demo: $(DEMO_STAMP)
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

## eval: how good the reports are: the bundled questions (bench/eval/cases) through the local
## stack, offline and on the fake model (and a configured model, if BRIEF_*_MODEL is set);
## nugget recall, citation support, redundancy, dangling sentences. bench-results/eval.json.
eval: $(STAMP)
	$(BIN)/python -m bench.eval

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
