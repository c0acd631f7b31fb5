# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Branch coverage of the six packages over the whole suite (91.1% in a clean checkout when this floor was set);
# it may only rise.
COVERAGE_FLOOR := 90
# The suite runs on this many processes (pytest-xdist), a test file to a process so that a module's servers
# start once; CI and the reference machine have 2 cores.
TEST_WORKERS ?= 2

.PHONY: demo test demo-deps test-deps bench lint typecheck clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e . --group dev
	touch $(STAMP)

# System packages (libzbar0, chromium, a running PostgreSQL): installed or started when missing and possible,
# otherwise one line says what to install. Quiet when everything is there.
demo-deps:
	@bash scripts/system-deps.sh demo

test-deps:
	@bash scripts/system-deps.sh test

demo: $(STAMP) demo-deps
	$(BIN)/possim demo

test: $(STAMP) test-deps lint typecheck
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile --cov --cov-report= --cov-fail-under=$(COVERAGE_FLOOR)

bench: $(STAMP) demo-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/benchmarks --benchmark-enable --benchmark-columns=min,median,mean,max,rounds

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
