"""Health endpoints for load balancers and orchestrators; no authentication, JSON bodies.

- `GET /healthz` (liveness): the process answers. No database, no session, nothing else: it is
  also the floor that `make bench` measures every other endpoint against.
- `GET /readyz` (readiness): the database answers and every migration this code ships is
  applied; 503 naming the problem otherwise, so a new release is sent traffic only once its
  schema is there; and the stored secrets open with the configured keys (relays.crypto), so a
  server started with the wrong RELAYAPI_ENCRYPTION_KEY says so, with the fix.
"""

import functools
import logging
import time

from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.http import HttpResponse, JsonResponse

from relays import crypto

log = logging.getLogger(__name__)

HEALTHY = b'{"status": "ok"}'


def healthz(request):
    return HttpResponse(HEALTHY, content_type="application/json")


@functools.cache
def shipped_migrations():
    """{(app, name): the (app, name)s it replaces} for every migration on disk.

    Read once per process (the code does not change under a running process); each readiness
    check then costs one query for what the database has applied.
    """
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return {key: tuple(loader.graph.nodes[key].replaces) for key in loader.graph.nodes}


def unapplied_migrations():
    applied = MigrationRecorder(connection).applied_migrations()
    return sorted(
        f"{app}.{name}"
        for (app, name), replaces in shipped_migrations().items()
        if (app, name) not in applied and not (replaces and all(r in applied for r in replaces))
    )


# How long one process trusts its sample of the stored secrets (relays.crypto.key_problem, one
# query): the keys change only with a restart, the stored values rarely under another key.
KEY_CHECK_SECONDS = 30
# (the configured keys) -> (when sampled, the KeyProblem or None)
key_checks = {}


def key_problem():
    keys = tuple(settings.RELAYAPI_ENCRYPTION_KEYS)
    checked = key_checks.get(keys)
    if checked is None or time.monotonic() - checked[0] > KEY_CHECK_SECONDS:
        checked = key_checks[keys] = (time.monotonic(), crypto.key_problem())
    return checked[1]


def unavailable(problem):
    return JsonResponse({"status": "unavailable", "problem": problem}, status=503)


def readyz(request):
    try:
        missing = unapplied_migrations()
        keys = None if missing else key_problem()
    except (DatabaseError, InterfaceError):
        # The details (host, user) stay in the log: this endpoint answers anyone.
        log.exception("readiness check: database unreachable")
        return unavailable("database unreachable")
    if missing:
        return unavailable(f"{len(missing)} migration(s) not applied: {', '.join(missing)}")
    if keys is not None:
        return unavailable(str(keys))
    return JsonResponse({"status": "ok"})
