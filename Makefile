# weisu — every target creates the virtualenv itself, so a fresh clone needs only Python 3.11 and make.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# make demo PORT=8001: the review app on 8001, the simulators on 8011 and 8021.
demo: $(STAMP)
	$(BIN)/weisu demo $(if $(PORT),--port $(PORT))

# One pytest-xdist worker per core, plus one: many tests spend their time waiting on child processes,
# served simulators and heartbeats, and the extra worker runs in those waits (docs/benchmarks.md).
# A test file stays on one worker (its module fixtures are built once); the longest files go first, in
# the order tests/conftest.py gives (LONGEST_FILES). make test TEST_WORKERS=N overrides the count.
TEST_WORKERS ?= $(shell echo $$(( $$(nproc 2>/dev/null || echo 1) + 1 )))
test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

bench: $(STAMP)
	$(BIN)/python -m bench

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m storage.check_migrations

clean:
	rm -rf $(VENV) var .pytest_cache
