# Two commands do all set-up on a fresh machine:  make demo   and   make test
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
PIP_INSTALL := $(PIP) install -q -c constraints-cpu.txt
TEST_EXTRAS ?= dev,serve,video,export,openvino,int8,demo,train,eval,generate,seg
export HF_HUB_DISABLE_TELEMETRY=1
export GRADIO_ANALYTICS_ENABLED=False

.PHONY: install install-test demo test test-all lint clean

$(VENV)/.core-installed: pyproject.toml constraints-cpu.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP_INSTALL) torch==2.13.0
	$(PIP_INSTALL) -e .
	touch $@

$(VENV)/.test-installed: $(VENV)/.core-installed
	$(PIP_INSTALL) -e ".[$(TEST_EXTRAS)]"
	touch $@

install: $(VENV)/.core-installed

install-test: $(VENV)/.test-installed

## Install, then predict depth for examples/ with the bundled default model (writes out/demo/).
demo: install
	$(VENV)/bin/depthany predict examples --out out/demo --format color,png16,npy,sbs

## Install with test extras, then run the default (fast, offline, CPU) test tier.
test: install-test
	HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 -m "not slow"

## Everything, including slow tiers (full-size models, long training runs).
test-all: install-test
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q -n 2

lint: install-test
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy src

clean:
	rm -rf $(VENV) out .pytest_cache
