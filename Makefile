# qnnflow: the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.qnnflow-installed
SAMPLES ?= 1000
TEST_ARGS ?=

BUILD ?= build/demo
BOARD ?= pynq-z1

.PHONY: install demo test test-slow bench train zoo-table compress-results bitstream clean distclean

install: $(STAMP)

# Exact versions come from requirements.lock, installed with --no-deps so that
# no resolver can swap the CPU torch for a CUDA build or brevitas for finn-plus's
# broken pin. torch goes first, alone, so pip takes the CPU wheel on disk.
$(STAMP): requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11'"; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check "pip==24.3.1"
	$(PY) -m pip install -q --disable-pip-version-check --no-deps "torch==2.13.0"
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r requirements.lock
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@$(PY) -c "import torch, brevitas, finn, qonnx, mnist; assert '+cpu' in torch.__version__ or not torch.cuda.is_available()"
	@touch $@

demo: install
	$(VENV)/bin/qnnflow build --model tfc-w2a2 --samples $(SAMPLES) --out build/demo --force

test: install
	$(VENV)/bin/python -m pytest -q $(TEST_ARGS)

test-slow: install
	$(VENV)/bin/python -m pytest -q -m slow $(TEST_ARGS)

# Vivado 2022.2 or 2024.2 (XILINX_VIVADO set, vivado on PATH): e.g. inside the docker image
# (docker/README.md). Continues the finished build $(BUILD) (default: make demo's) to
# $(BUILD)/bitstream/ and the PYNQ deployment package $(BUILD)/deploy/.
bitstream: install
	$(VENV)/bin/qnnflow bitstream $(BUILD) --board $(BOARD) --force

bench: install
	$(VENV)/bin/qnnflow bench --out build/bench

train: install
	$(VENV)/bin/qnnflow train tfc-w2a2

# every compression method on tfc-w8a8, each distinct configuration built and verified:
# docs/compress/RESULTS.md, results.json, accuracy_vs_size.png (16-24 min on 2 cores, measured)
compress-results: install
	$(VENV)/bin/qnnflow compress study --out docs/compress

zoo-table: install
	$(PY) -c "from flow.cli_models import update_readme_zoo; update_readme_zoo('README.md')"

clean:
	rm -rf build

distclean: clean
	rm -rf $(VENV)
