# Two commands on a fresh machine: `make run` and `make test` (see README.md).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
HOST ?= 127.0.0.1
export PORT HOST

.PHONY: run test install install-test lint benchmark clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files: reinstall only when a lock file changes.
$(VENV)/.installed: $(BIN)/python requirements.lock
	$(BIN)/pip install --quiet -r requirements.lock
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.lock
	$(BIN)/pip install --quiet -r requirements-test.lock
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo
	@echo "Serving on http://$(HOST):$(PORT)/ (web + worker; Ctrl-C stops both)"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -p $(PORT)

# The suite in TEST_PROCESSES processes (pytest-xdist): each has its own test database (SQLite file or PostgreSQL
# database, suffixed _gw<N>), Redis database and media folder (config/settings_test.py). More processes than
# cores, because most of the slow tests wait (on real workers, a live server, a browser) rather than compute.
# worksteal: an idle process takes queued tests from a busy one, so one slow module does not end the run alone.
# PYTHONDONTWRITEBYTECODE (some machines set it) is cleared for the suite: the test processes and the workers they
# start then keep the project's bytecode and pytest's rewritten test modules in __pycache__ (git-ignored) instead of
# compiling them again in every process, every run (README, Tests: 4 s of CPU per test process). compileall writes
# the project's bytecode once before the processes start, not in each of them at once on a fresh clone.
# 6 rather than 4: three pairs of whole runs on 2 cores, alternated, gave 249/262/261 s against 269/283/280 s of
# pytest wall (README, Tests); 8 gave 292 s (the CPU-bound tests then crowd each other).
TEST_PROCESSES ?= 6
test: install-test
	$(BIN)/python -m compileall -q -x '/\.venv/' .
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m pytest -n $(TEST_PROCESSES) --dist worksteal $(PYTEST_ARGS)

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

benchmark: install-test
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) staticfiles db.sqlite3*
