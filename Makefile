# `make demo` and `make test` set up everything they need on a fresh machine:
# a virtual environment in .venv with the pinned packages of pyproject.toml.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lit pytest bench env clean gpu-check

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

test: $(STAMP) lit pytest

lit: $(STAMP)
	PATH=$(abspath $(VENV))/bin:$$PATH $(VENV)/bin/lit -sv lit

pytest: $(STAMP)
	$(PY) -m pytest -q tests

BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) benchmarks/run.py

# Kiln on one NVIDIA GPU against eager and Inductor there (issue 20): needs the GPU and a CUDA
# build of torch (see benchmarks/gpu_check.sh); without a GPU it stops at once, before setting
# up .venv. Results: benchmarks/results/gpu_check.{json,md}, or $(OUT) when set.
gpu-check:
	bash benchmarks/gpu_check.sh

clean:
	rm -rf $(VENV) build *.egg-info
