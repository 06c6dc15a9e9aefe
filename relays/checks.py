"""System checks: `manage.py check`, and every command that runs the checks at start-up
(`runserver` under `make run`, `migrate` under `make serve`), name a configuration problem with
its fix before a request meets it."""

from pathlib import Path

from django.core import checks
from django.db import DatabaseError, connection

from relays import crypto


def _no_database_yet():
    """An SQLite file not created yet: checking would create an empty one."""
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return False
    return not Path(connection.settings_dict["NAME"]).is_file()


@checks.register()
def encryption_keys_open_stored_secrets(app_configs=None, **kwargs):
    """A warning, not an error: an error would stop every command, `revoke_access_key` and the
    rotation that fixes it among them, while what needs no secret keeps working."""
    if _no_database_yet():
        return []
    try:
        problem = crypto.key_problem()
    except DatabaseError:  # not migrated, or unreachable: migrate and /readyz say so
        return []
    if problem is None:
        return []
    return [checks.Warning(problem.with_key(), id="relays.W001")]
