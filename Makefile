# `make run`: install and serve on http://127.0.0.1:8000 (SQLite under var/, DEBUG on).
# `make test`: install and run every test on SQLite and on a real PostgreSQL.
PYTHON ?= python3
VENV := .venv
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run serve test fuzz bench bench-admin lint check clean lock screenshots reliability postfix-facts

# The production dependencies exactly as pinned (and hashed) in requirements.lock, then the
# project and its dev tools; the tests thus run on the versions production installs.
$(VENV)/installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet --require-hashes -r requirements.lock >$(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }
	$(VENV)/bin/pip install --quiet -e ".[dev]" >$(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }
	touch $@

install: $(VENV)/installed

run: install
	DEBUG=$${DEBUG:-1} $(VENV)/bin/python manage.py migrate --noinput
	DEBUG=$${DEBUG:-1} $(VENV)/bin/python manage.py runserver $(HOST):$(PORT)

# Production-style: gunicorn with deploy/gunicorn.conf.py (needs SECRET_KEY, ALLOWED_HOSTS and
# RELAYAPI_ENCRYPTION_KEY), on the locked dependencies (`install` installs requirements.lock).
serve: install
	$(VENV)/bin/python manage.py migrate --noinput
	$(VENV)/bin/python manage.py collectstatic --noinput --verbosity 0
	$(VENV)/bin/gunicorn -c deploy/gunicorn.conf.py relayapi.wsgi

test: install
	deploy/run-tests.sh

# schemathesis against the GreenArrow API (tests/fuzz/) with a larger budget than `make test`
# gives it, random so that each run explores elsewhere: FUZZ_EXAMPLES examples per operation
# and twice as many stateful scenarios, on SQLite and on PostgreSQL (about 20 minutes at 500).
FUZZ_EXAMPLES ?= 500
fuzz: install
	RELAYAPI_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) deploy/run-tests.sh tests/fuzz

# PostgreSQL + gunicorn (production config) + nginx, driven by wrk; see BENCHMARKS.md.
# Knobs: BENCH_RELAYS (100000), BENCH_SECONDS (10), BENCH_WARMUP (2), BENCH_OUTPUT.
bench: install
	$(VENV)/bin/python deploy/bench/run.py

# The admin's pages at 100,000 relay servers: time and queries per page against a floor, in
# process on a throwaway PostgreSQL. Knobs: BENCH_RELAYS (100000), BENCH_ROUNDS (20).
bench-admin: install
	$(VENV)/bin/python deploy/bench/admin_pages.py

# Scripted faults on a throwaway PostgreSQL + gunicorn (production config), all on 127.0.0.1:
# PostgreSQL stopped and killed under load, workers SIGKILLed during creates, a 3-minute mixed
# load on both APIs; exits non-zero when an expectation fails (deploy/reliability/run.py).
# Knobs: RELIABILITY_LOAD_SECONDS (180), RELIABILITY_SCENARIOS (database,workers,load,passwords), ...
reliability: install
	$(VENV)/bin/python deploy/reliability/run.py

# The Postfix behaviour render_postfix relies on (tests/postfix/test_harness.py), against a
# private Postfix instance: key precedence, caches, SASL, concurrency, rate delay, checks.
postfix-facts: install
	RELAYAPI_POSTFIX_FACTS=1 $(VENV)/bin/python -m pytest tests/postfix/test_harness.py

# The README's screenshots of the admin (docs/screenshots/*.png): demo data in a throwaway SQLite
# database, served by gunicorn on 127.0.0.1, shot by Debian's headless Chromium (/usr/bin/chromium).
screenshots: install
	$(VENV)/bin/python deploy/screenshots.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=1 $(VENV)/bin/python manage.py check
	DEBUG=1 $(VENV)/bin/python manage.py makemigrations --check --dry-run

check: lint test

# Re-pin requirements.lock after a change to pyproject.toml's `dependencies` (tests/test_lock.py
# fails until then): pip-tools in a throwaway virtualenv; hashes of every file of each version.
# Pins that still fit are kept; `make lock LOCK_ARGS=--upgrade` moves everything to the newest.
lock:
	rm -rf $(VENV)-lock && $(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install --quiet pip-tools
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)-lock/bin/pip-compile --quiet --generate-hashes \
	    --strip-extras --allow-unsafe --no-emit-index-url --no-emit-find-links $(LOCK_ARGS) \
	    --output-file requirements.lock pyproject.toml
	rm -rf $(VENV)-lock

clean:
	rm -rf $(VENV) var *.egg-info
