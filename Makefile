# Two commands for a fresh machine:
#   make run    install everything into .venv and run the platform with a demo (Ctrl-C stops it)
#               other ports: make run PORT=18000 INFERENCE_PORT=18080
#   make test   install everything into .venv and run the whole test suite (lint, types, layers, tests)

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint check-layers pytest clean bench

install: $(STAMP)

# Pinned: requirements.lock constrains every package (torch==2.13.0 is the CPU wheel).
$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

# Ports: PORT (control plane, default 8000) and INFERENCE_PORT (default 8080); unset, aiaas up
# takes AIAAS_PORT / AIAAS_INFERENCE_PORT or its defaults.
run: install
	$(BIN)/aiaas up --demo $(if $(PORT),--port $(PORT)) $(if $(INFERENCE_PORT),--inference-port $(INFERENCE_PORT))

test: lint pytest

lint: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy
	$(BIN)/lint-imports

pytest: install
	$(BIN)/pytest

# Serving benchmark against the FastAPI + ONNX Runtime baseline; report in benchmarks/results/.
# Extra flags: make bench BENCH_ARGS="--quick"
bench: install
	$(BIN)/python benchmarks/serving.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
