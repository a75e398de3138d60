# Two entry points: `make run` (the service locally) and `make test` (every test).
# Each creates .venv with Python 3.11 and installs what it needs on first use: `make run`
# only what running needs; `make test` adds the test and lint tools.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
DEPS_HASH := $(shell cat pyproject.toml client/pyproject.toml | cksum | cut -d' ' -f1)
RUN_STAMP := $(VENV)/.run-$(DEPS_HASH)
DEV_STAMP := $(VENV)/.dev-$(DEPS_HASH)
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

# The console's browser tests drive Debian's chromium through Playwright (Playwright's own
# browser download cannot reach this machine's network).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# aws-sam-cli pins an older boto3 than the service, so it lives in a venv of its own.
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed-1.170.0
export SAM_CLI_TELEMETRY := 0

# checkov (the template's security scan) pins its own dependency tree: a venv of its own too.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-3.3.30

# The OpenAPI document's linters and client generators (docs/openapi.yaml as a product,
# contract/README.md): npm packages pinned in contract/package-lock.json, and
# openapi-python-client in a venv of its own. None of it is part of the service.
CONTRACT := contract
CONTRACT_STAMP := $(CONTRACT)/node_modules/.installed-$(shell cksum < $(CONTRACT)/package-lock.json | cut -d' ' -f1)
OPENAPI_VENV := .venv-openapi
OPENAPI_STAMP := $(OPENAPI_VENV)/.installed-0.29.1
export REDOCLY_TELEMETRY := off
export REDOCLY_SUPPRESS_UPDATE_NOTICE := true

.PHONY: run test lint typecheck unit sam scan contract format clean console-screenshots

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "needs $(PYTHON) on PATH"; exit 1; }
	@echo "Creating $(VENV) with $(PYTHON) ..."
	@$(PYTHON) -m venv $(VENV)
	@$(PIP) --upgrade pip

$(RUN_STAMP): pyproject.toml client/pyproject.toml | $(BIN)/python
	@echo "Installing what the local cloud needs into $(VENV) (first run only, about a minute) ..."
	@$(PIP) -e '.[local]' -e ./client
	@rm -f $(VENV)/.run-*
	@touch $(RUN_STAMP)

$(DEV_STAMP): $(RUN_STAMP)
	@echo "Installing the test and lint tools into $(VENV) (first run only) ..."
	@$(PIP) -e '.[local,dev]' -e ./client
	@rm -f $(VENV)/.dev-*
	@touch $(DEV_STAMP)

$(SAM_STAMP):
	@echo "Installing aws-sam-cli into $(SAM_VENV) (first run only) ..."
	@test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	@$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(SAM_VENV)/bin/python -m pip install --quiet --disable-pip-version-check aws-sam-cli==1.170.0
	@rm -f $(SAM_VENV)/.installed-*
	@touch $(SAM_STAMP)

$(CHECKOV_STAMP):
	@echo "Installing checkov into $(CHECKOV_VENV) (first run only) ..."
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	@$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check checkov==3.3.30
	@rm -f $(CHECKOV_VENV)/.installed-*
	@touch $(CHECKOV_STAMP)

$(CONTRACT_STAMP): $(CONTRACT)/package.json $(CONTRACT)/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "Installing Debian's nodejs and npm (first run only) ..."; \
		export DEBIAN_FRONTEND=noninteractive; $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -q nodejs npm >/dev/null 2>&1 \
		|| { $(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null && $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -q nodejs npm >/dev/null; }; }
	@echo "Installing the OpenAPI linters and generators into $(CONTRACT)/node_modules (first run only) ..."
	@npm ci --prefix $(CONTRACT) --no-audit --no-fund --loglevel=error >/dev/null
	@rm -f $(CONTRACT)/node_modules/.installed-*
	@touch $(CONTRACT_STAMP)

$(OPENAPI_STAMP):
	@echo "Installing openapi-python-client into $(OPENAPI_VENV) (first run only) ..."
	@test -x $(OPENAPI_VENV)/bin/python || $(PYTHON) -m venv $(OPENAPI_VENV)
	@$(OPENAPI_VENV)/bin/python -m pip install --quiet --disable-pip-version-check openapi-python-client==0.29.1
	@rm -f $(OPENAPI_VENV)/.installed-*
	@touch $(OPENAPI_STAMP)

$(CHROMIUM):
	@echo "Installing Debian's chromium for the console's browser tests (first run only) ..."
	@export DEBIAN_FRONTEND=noninteractive; $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -q chromium >/dev/null 2>&1 \
		|| { $(SUDO) apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null && $(SUDO) apt-get -o DPkg::Lock::Timeout=600 install -y -q chromium >/dev/null; }
	@test -x $(CHROMIUM)

run: $(RUN_STAMP)
	@$(BIN)/python -m localcloud serve

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

unit: $(DEV_STAMP) $(CHROMIUM) $(CONTRACT_STAMP) $(OPENAPI_STAMP)
	$(BIN)/pytest

# The console's screenshots in docs/ (docs/console.md), taken by its browser tests.
console-screenshots: $(DEV_STAMP) $(CHROMIUM)
	JOBS_CONSOLE_SCREENSHOTS=docs $(BIN)/pytest -q tests/browser -k "counts_change_live or worker_posts or user_sees or 390"

# sam validate --lint and sam build (python3.11, arm64, dependencies from PyPI).
sam: $(SAM_STAMP)
	AWS_DEFAULT_REGION=us-east-1 $(SAM_VENV)/bin/sam validate --lint
	AWS_DEFAULT_REGION=us-east-1 $(SAM_VENV)/bin/sam build --build-dir .aws-sam/build

# The template's security scan: any failed check fails the build. A finding that does not
# fit this service is skipped in template.yaml, on its resource, with the reason.
scan: $(CHECKOV_STAMP)
	BC_SKIP_MAPPING=TRUE $(CHECKOV_VENV)/bin/checkov -f template.yaml --framework cloudformation --compact --quiet

# docs/openapi.yaml lints clean: Redocly (recommended-strict) and Spectral (spectral:oas),
# no error and no warning. The generated clients run in tests/contract.
contract: $(CONTRACT_STAMP)
	$(CONTRACT)/node_modules/.bin/redocly lint docs/openapi.yaml --config $(CONTRACT)/redocly.yaml --format stylish
	$(CONTRACT)/node_modules/.bin/spectral lint docs/openapi.yaml --ruleset $(CONTRACT)/.spectral.yaml --fail-severity warn

# The OpenAPI linters run once, in tests/contract (`make contract` runs them alone).
test: lint typecheck sam scan unit

format: $(DEV_STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) $(OPENAPI_VENV) $(CONTRACT)/node_modules .aws-sam .pytest_cache .mypy_cache .ruff_cache
