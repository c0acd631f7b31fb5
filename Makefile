# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Branch coverage of the six packages over the whole suite (`make coverage`; 91.1% in a clean checkout when
# this floor was set); it may only rise.
COVERAGE_FLOOR := 90
# The suite runs on this many processes (pytest-xdist), a test file to a process so that a module's servers
# start once. CI and the reference machine have 2 cores; a third process fills the time the other two wait
# (servers starting, a register waiting for the core): 13.3 min on two, 12.2 on three in one checkout here.
TEST_WORKERS ?= 3
PYTEST := $(BIN)/python -m pytest -q -p no:cacheprovider --dist loadfile

.PHONY: demo test coverage demo-deps test-deps bench lint typecheck clean

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
	$(PYTEST) -n $(TEST_WORKERS) --no-cov

# The whole suite again under coverage, counting the servers and clients it starts as subprocesses; it fails
# below the floor. Kept out of `make test`: on Python 3.11 the tracer makes the suite about 40% slower
# (16.8 min against 12.2 on three processes here), past the 15 minutes `make test` is given.
coverage: $(STAMP) test-deps
	$(PYTEST) -n $(TEST_WORKERS) --cov --cov-report=term:skip-covered --cov-fail-under=$(COVERAGE_FLOOR)

bench: $(STAMP) demo-deps
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/benchmarks --benchmark-enable --benchmark-columns=min,median,mean,max,rounds

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
