from pathlib import Path

from django.apps import AppConfig
from django.db.backends.signals import connection_created


def private_sqlite_file(sender, connection, **kwargs):
    """An SQLite database file is readable by its owner only (0600): it holds password hashes
    and the encrypted secrets. A file made by an older release (0644) is tightened too; SQLite
    gives its journal files the database file's mode."""
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return
    path = Path(connection.settings_dict["NAME"])
    if path.is_file() and path.stat().st_mode & 0o077:
        path.chmod(0o600)


class RelaysConfig(AppConfig):
    name = "relays"
    verbose_name = "Relay servers and other delivery paths"

    def ready(self):
        connection_created.connect(private_sqlite_file, dispatch_uid="relays.private_sqlite_file")
        import relays.checks  # noqa: F401 (registers the system checks)
        from relays import audit_accounts

        audit_accounts.connect()
