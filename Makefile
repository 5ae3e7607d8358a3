# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run demo test test-pg lint bench soak fuzz clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/throughcare db upgrade
	$(BIN)/throughcare demo
	@echo "Staff console: http://$(HOST):$(PORT)/staff/login (sign in with an email and password above)"
	$(BIN)/throughcare run --host $(HOST) --port $(PORT)

demo: install
	$(BIN)/throughcare demo

# pytest exits 5 when it collects nothing: that is a failure of the suite, said plainly.
test: install
	@$(BIN)/pytest -q -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; \
	exit $$rc

test-pg: install
	@DATABASE_URL=$${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test} \
	$(BIN)/pytest -q -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test-pg: no tests were collected" >&2; exit 1; fi; \
	exit $$rc

lint: install
	$(BIN)/ruff check bot handlers scheduler meeting_finder storage tests bench
	$(BIN)/mypy

# `make bench BENCHES=priority BENCH_ARGS=--json` runs one, ending in a JSON line.
BENCHES ?= meeting_search broadcast scheduler priority door inbound
bench: install
	@set -e; for name in $(BENCHES); do \
		echo "== python -m bench.$$name $(BENCH_ARGS)"; \
		$(BIN)/python -m bench.$$name $(BENCH_ARGS); \
	done

# `throughcare run` in its own process under steady SMS and Telegram load (SOAK_RATE a second for
# SOAK_SECONDS); `SOAK_RATE=20 SOAK_SECONDS=600 make soak`. BENCH_DATABASE_URL picks PostgreSQL.
soak: install
	$(BIN)/python -m bench.soak --rate $${SOAK_RATE:-100} --seconds $${SOAK_SECONDS:-60} --json

# 10,000 signed hostile webhook requests against the real app: 0 5xx, 0 stuck rows.
fuzz: install
	$(BIN)/python -m bench.fuzz --requests $${FUZZ_REQUESTS:-10000} --json

clean:
	rm -rf $(VENV) throughcare.db throughcare.db-wal throughcare.db-shm
