# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test install system-deps postgres lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Migrate an embedded SQLite DB, seed the demo brand and serve on http://127.0.0.1:8000
demo: install
	$(BIN)/toolkit demo

## Install what is missing (Python deps, chromium, CJK fonts), start PostgreSQL, run everything
test: install system-deps postgres
	$(BIN)/lint-imports
	$(BIN)/pytest -n 2 $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

system-deps:
	@bash scripts/ensure-system-deps.sh

postgres:
	@bash scripts/ensure-postgres.sh

lint: install
	$(BIN)/lint-imports

## Benchmarks run on PostgreSQL (a database of their own, never the test one)
BENCH_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/bench
bench: install postgres
	@psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname = 'bench'" | grep -q 1 || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE bench" >/dev/null
	@for script in benchmarks/*.py; do case $$script in */_*) continue;; esac; \
	  TOOLKIT_DATABASE_URL=$${TOOLKIT_DATABASE_URL:-$(BENCH_DATABASE_URL)} $(BIN)/python $$script || exit $$?; done

clean:
	rm -rf $(VENV) .pytest_cache toolkit.db toolkit.db-wal toolkit.db-shm
