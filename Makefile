# make demo   install, then run the main job for real (standalone server, export, bulk upload)
# make test   install, then lint and run the whole test suite
# make bench  install, then run the benchmarks (prints name=value figures)
# make soak   install, then the fault and load tests on the live stack, ten times larger

# The first Python >= 3.11 that runs (pyenv shims of absent versions fail the check).
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do $$p -c 'import sys; assert sys.version_info >= (3, 11)' 2>/dev/null && { echo $$p; break; }; done)
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_HOME ?= $(CURDIR)/.exportbulk/demo

.PHONY: install demo test lint bench soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[standalone,test]'

demo: install
	rm -rf $(DEMO_HOME)
	EXPORTBULK_HOME=$(DEMO_HOME) $(BIN)/exportbulk-standalone demo

lint: install
	$(BIN)/ruff check .

test: lint
	$(BIN)/pytest

bench: install
	$(BIN)/python -m bench

soak: install
	EXPORTBULK_SOAK=10 $(BIN)/pytest -m live tests/test_live_faults.py --timeout 3600 -k "killed or load"

clean:
	rm -rf $(VENV) .exportbulk build dist *.egg-info
