# Two entry points: `make run` (the service locally) and `make test` (every test).
# Each creates .venv with Python 3.11 and installs what it needs on first use.

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml client/pyproject.toml | cksum | cut -d' ' -f1)

# aws-sam-cli pins an older boto3 than the service, so it lives in a venv of its own.
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed-1.170.0
export SAM_CLI_TELEMETRY := 0

.PHONY: run test lint typecheck unit sam format clean

$(STAMP): pyproject.toml client/pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "needs $(PYTHON) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e ./client
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

$(SAM_STAMP):
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet aws-sam-cli==1.170.0
	rm -f $(SAM_VENV)/.installed-*
	touch $(SAM_STAMP)

run: $(STAMP)
	$(BIN)/python -m localcloud serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint template.yaml

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

# sam validate --lint and sam build (python3.11, arm64, dependencies from PyPI).
sam: $(SAM_STAMP)
	AWS_DEFAULT_REGION=us-east-1 $(SAM_VENV)/bin/sam validate --lint
	AWS_DEFAULT_REGION=us-east-1 $(SAM_VENV)/bin/sam build --build-dir .aws-sam/build

test: lint typecheck sam unit

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
