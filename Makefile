# Two commands for a new machine: `make run` (the whole platform) and `make test` (every test).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench lint install clean screenshots

run: $(STAMP)
	$(VENV)/bin/iaf dev

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m bench

# The README's picture of the web client, taken by the browser tests (Debian's chromium).
screenshots: $(STAMP)
	IAF_SCREENSHOT_DIR=docs/screenshots $(PY) -m pytest tests/web/test_agents.py -q -k markdown

SOURCES := api workflows activities workers schemas iaf

lint: $(STAMP)
	$(VENV)/bin/ruff check $(SOURCES) tests bench
	$(VENV)/bin/ruff format --check $(SOURCES) tests bench
	$(VENV)/bin/mypy $(SOURCES)
	$(VENV)/bin/lint-imports

install: $(STAMP)

# CPU torch first: `torch==2.13.0` is the CPU build this machine kind keeps on disk.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .iaf
