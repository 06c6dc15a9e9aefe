#!/bin/sh
# Start one RelayAPI app server: the container's entrypoint, also run by tests/e2e.
#   1. wait for the database (at most DB_WAIT_SECONDS, default 60),
#   2. apply migrations (RELAYAPI_MIGRATE=0 skips it) and collect static files,
#   3. replace this shell with gunicorn (deploy/gunicorn.conf.py), so it gets the signals.
# Needs `python` and `gunicorn` of the project's environment on PATH, and the same environment
# as the app itself (SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL, ...). Extra arguments go to gunicorn.
set -eu
cd "$(dirname "$0")/.."
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-relayapi.settings}"

# One interpreter for all three steps (each manage.py run would load Django again). On
# PostgreSQL the migrations run under an advisory lock, so app servers that start together
# migrate one after the other instead of racing each other.
python - <<'PY'
import os
import sys
import time

import django

django.setup()

from django.core.management import call_command
from django.db import InterfaceError, OperationalError, connection

wait = float(os.environ.get("DB_WAIT_SECONDS", "60"))
deadline = time.monotonic() + wait
while True:
    try:
        connection.ensure_connection()
        break
    except (OperationalError, InterfaceError) as error:
        if time.monotonic() >= deadline:
            sys.exit(f"entrypoint: the database did not answer within {wait:g} s: {error}")
        connection.close()
        time.sleep(1)

if os.environ.get("RELAYAPI_MIGRATE", "1") != "0":
    postgresql = connection.vendor == "postgresql"
    if postgresql:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [0x4D494752])  # "MIGR"
    call_command("migrate", interactive=False, verbosity=0)
    if postgresql:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [0x4D494752])
call_command("collectstatic", interactive=False, verbosity=0)
PY

exec gunicorn -c deploy/gunicorn.conf.py "$@" relayapi.wsgi
