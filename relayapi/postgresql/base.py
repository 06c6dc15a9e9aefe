"""Django's PostgreSQL backend with a deadline on every answer the server owes.

A server that stops answering without closing its connections (a stalled disk, a frozen host or
VM, a SIGSTOPped postmaster) goes unseen by the socket: the kernel still acknowledges what is
sent, so `tcp_user_timeout` never fires, and the server's own `statement_timeout` cannot run. A
query would wait until gunicorn killed the worker (30 s) and its client saw the connection drop.
Here every round trip (a query, a commit, a rollback) waits at most `answer_deadline` seconds
(OPTIONS; settings.py derives it from the statement timeout). Then the connection is closed,
never reused, and the request fails with OperationalError: a 503 through both APIs, like a
database that is down. Connecting has its own bound, libpq's `connect_timeout`.
"""

import psycopg
from django.db.backends.postgresql import base
from psycopg.errors import _WaitTimeout


class Connection(psycopg.Connection):
    answer_deadline = None  # seconds; None waits as long as it takes

    def wait(self, gen, interval=0.1, timeout=None):
        if timeout is not None or self.answer_deadline is None:
            # psycopg's own bounded waits (a cancel, notifies) keep their timeout and errors.
            return super().wait(gen, interval, timeout)
        try:
            return super().wait(gen, interval, self.answer_deadline)
        except _WaitTimeout:
            # The protocol is mid-exchange: the connection cannot be used again.
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"the database did not answer within {self.answer_deadline:g} s"
            ) from None


class _Driver:
    """The psycopg module as Django's backend calls it, connecting with a `Connection` class."""

    def __init__(self, connection_class):
        self.connect = connection_class.connect

    def __getattr__(self, name):
        return getattr(psycopg, name)


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, settings_dict, *args, **kwargs):
        super().__init__(settings_dict, *args, **kwargs)
        options = self.settings_dict.setdefault("OPTIONS", {})
        deadline = options.get("answer_deadline")
        self.connection_class = type("Connection", (Connection,), {"answer_deadline": deadline})
        self.Database = _Driver(self.connection_class)
        if isinstance(options.get("pool"), dict):
            options["pool"] = {**options["pool"], "connection_class": self.connection_class}

    def get_connection_params(self):
        params = super().get_connection_params()
        params.pop("answer_deadline", None)  # ours, not libpq's
        return params
