# Two commands for a new machine: `make run` (the whole platform) and `make test` (every test).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-busy soak bench lint install clean screenshots

run: $(STAMP)
	$(VENV)/bin/iaf dev

test: $(STAMP)
	$(PY) -m pytest

# The whole suite with both cores taken by two busy loops started and stopped here: a test
# that waits on a fixed short time instead of a condition fails under it.
test-busy: $(STAMP)
	@$(PY) -c 'while True: pass' & one=$$!; $(PY) -c 'while True: pass' & two=$$!; \
	trap 'kill $$one $$two 2>/dev/null' EXIT; $(PY) -m pytest

# Longer chaos, fuzzing and stateful privacy runs than `make test` affords (tests/chaos, the
# OpenAPI fuzzer, random unseeded runs of the privacy state machine); -rP prints what each
# one injected and measured.
SOAK_ENV := IAF_CHAOS_SCALE=5 IAF_FUZZ_REQUESTS=20000 IAF_PRIVACY_SOAK=1
soak: $(STAMP)
	$(SOAK_ENV) $(PY) -m pytest -rP tests/chaos tests/api/test_fuzz_openapi.py \
		tests/privacy/test_stateful_privacy.py

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
