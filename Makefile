# The two commands of the README: `make run` (the site + dev IdP) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
WORKERS ?= auto

.PHONY: run test lint setup bench clean

run: setup
	$(PY) scripts/dev.py

test: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo
	$(PY) -m pytest -n $(WORKERS) --dist loadfile

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/lint-imports --no-logo

bench: setup
	$(PY) bench/bench_signin.py
	$(PY) bench/bench_middleware.py
	$(PY) bench/bench_encryption.py
	$(PY) bench/bench_sync.py
	$(PY) bench/bench_refresh.py
	$(PY) bench/bench_api.py
	$(PY) bench/bench_ssf.py
	$(PY) bench/bench_fapi2.py

setup: $(VENV)/.installed devidp/node_modules/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

devidp/node_modules/.installed: devidp/package-lock.json
	cd devidp && npm ci --no-audit --no-fund --loglevel=error
	touch $@

clean:
	rm -rf $(VENV) devidp/node_modules artifacts .pytest_cache
