# Two commands for a new machine: `make run` (the whole platform) and `make test` (every test).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test bench soak lint install clean

run: $(STAMP)
	$(VENV)/bin/iaf dev

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m bench

# Long randomised runs of the stateful tests (make test runs them bounded, with a fixed seed).
soak: $(STAMP)
	IAF_PRIVACY_SOAK=1 $(PY) -m pytest tests/privacy/test_stateful_privacy.py -p no:cacheprovider

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
