# Two commands for a fresh machine:
#   make run    install everything into .venv and run the platform with a demo (Ctrl-C stops it)
#               other ports: make run PORT=18000 INFERENCE_PORT=18080
#   make test   install everything into .venv and run the whole test suite (lint, types, layers, tests)
#
# While working:
#   make test-fast   the in-process tier on SQLite (no server or worker processes): under two
#                    minutes, the inner loop; `make test` (both tiers, both databases) before a commit
#   make openapi-snapshot   refresh tests/api/inprocess/openapi-control-plane.json after an
#                    intended API change (its test fails, with a diff, until then)
# The folder a test lives in decides its tier (tests/_tiers.py).

PYTHON ?= python3.11
# Test processes (pytest-xdist): much of the process tier waits on the servers, replicas and
# jobs its tests started (or on their windows and intervals), so four test processes keep two
# cores busy where two left them idle; the in-process tier (test-fast) computes, so two there.
# A module's tests stay in one process (--dist loadfile), which keeps its module-scoped servers
# to one start. TEST_WORKERS=0 (or FAST_TEST_WORKERS=0): one process.
TEST_WORKERS ?= 4
FAST_TEST_WORKERS ?= 2
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-fast lint check-layers pytest openapi-snapshot clean bench

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
	$(BIN)/pytest $(if $(filter-out 0,$(TEST_WORKERS)),-n $(TEST_WORKERS) --dist loadfile)

# In-process tier, SQLite only: the code under test runs inside pytest (tests/_tiers.py).
test-fast: install
	$(BIN)/pytest -m "inprocess and not postgres" -q $(if $(filter-out 0,$(FAST_TEST_WORKERS)),-n $(FAST_TEST_WORKERS) --dist loadfile)

openapi-snapshot: install
	AIAAS_TEST_UPDATE_SNAPSHOTS=1 $(BIN)/pytest -q tests/api/inprocess/test_openapi_snapshot.py

# Serving benchmark against the FastAPI + ONNX Runtime baseline; report in benchmarks/results/.
# Extra flags: make bench BENCH_ARGS="--quick"
bench: install
	$(BIN)/python benchmarks/serving.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
