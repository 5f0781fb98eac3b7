# `make help` lists the targets. The ones a newcomer needs: `make demo`, `make test`.

# The first Python >= 3.11 that runs (pyenv shims of absent versions fail the check).
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do $$p -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null && { echo $$p; break; }; done)
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_HOME ?= $(CURDIR)/.exportbulk/demo
# mypy's Django plugin imports the standalone settings, which keep their state in EXPORTBULK_HOME.
MYPY_HOME ?= $(CURDIR)/.exportbulk/mypy

.DEFAULT_GOAL := help
.PHONY: help install demo test lint test-format test-types test-package format changelog-entry changelog \
	bench soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

help: ## Print this help: one line per target.
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "%-16s %s\n", $$1, $$2}'

install: $(BIN)/python ## Create .venv and install the package (editable) with its standalone, test and platform extras.
	$(BIN)/python -m pip install --quiet -e '.[standalone,test,platform]'

demo: install ## Run the main job for real: standalone server, export, restore, bulk upload.
	rm -rf $(DEMO_HOME)
	EXPORTBULK_HOME=$(DEMO_HOME) $(BIN)/exportbulk-standalone demo

test: lint test-format test-types ## Lint, check format and types, then run the whole test suite (package check included).
	$(BIN)/pytest

lint: install ## Lint with ruff.
	$(BIN)/ruff check .

test-format: install ## Check the formatting (ruff format --check); `make format` fixes it.
	$(BIN)/ruff format --check --diff .

test-types: install ## Type-check tutor_exportbulk/ (strict) and plugin_app/ (django-stubs); see pyproject.toml.
	EXPORTBULK_HOME=$(MYPY_HOME) $(BIN)/mypy

test-package: install ## Build the sdist and wheel, twine check them, install the wheel in a fresh venv.
	$(BIN)/pytest tests/test_package.py

format: install ## Format the code with ruff format.
	$(BIN)/ruff format .

changelog-entry: install ## Create a changelog fragment in changelog.d/ to edit.
	$(BIN)/scriv create

changelog: install ## Collect the changelog.d/ fragments into CHANGELOG.md, under the version in __about__.py.
	$(BIN)/scriv collect

bench: install ## Run the benchmarks (prints name=value figures).
	$(BIN)/python -m bench

soak: install ## Run the fault and load tests on the live stack, ten times larger.
	EXPORTBULK_SOAK=10 $(BIN)/pytest -m live tests/test_live_faults.py --timeout 3600 -k "killed or load"

clean: ## Remove .venv, local state and build output.
	rm -rf $(VENV) .exportbulk build dist *.egg-info .mypy_cache
