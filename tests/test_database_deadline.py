"""A PostgreSQL server that hangs, rather than going away, still gets an answer to the client.

The database is reached through a loopback TCP relay that can stop passing bytes in both
directions while its connections stay open: what a SIGSTOPped server, a stalled disk or a frozen
VM look like from the client (the kernel still acknowledges, so no TCP timeout fires). Each
answer is awaited at most `answer_deadline` seconds (relayapi/postgresql/base.py); then the
connection is dropped and the request answers 503, and the next one, once the server answers
again, is served on a new connection.
"""

import contextlib
import socket
import threading
import time

import psycopg
import pytest
from django.db import close_old_connections, connection

from relayapi.postgresql.base import Connection, DatabaseWrapper
from tests.conftest import GreenArrowClient
from tests.factories import RelayServerFactory, UserFactory

pytestmark = pytest.mark.postgresql
DEADLINE = 0.5
CONNECT = 2  # libpq's connect_timeout: whole seconds, and at least 2


class Stall:
    """A TCP relay on 127.0.0.1 to (host, port); `frozen` holds every byte, both ways."""

    def __init__(self, host, port):
        self.target = (host, int(port))
        self.frozen = threading.Event()
        self.closing = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closing.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            self.sockets += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source, sink):
        try:
            while data := source.recv(65536):
                while self.frozen.is_set() and not self.closing.is_set():
                    time.sleep(0.01)
                sink.sendall(data)
        except OSError:
            pass

    def close(self):
        self.closing.set()
        for sock in self.sockets:
            # shutdown, not only close: a thread blocked in recv() keeps a closed socket open.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


@contextlib.contextmanager
def stall_in_front_of(settings_dict):
    stall = Stall(settings_dict["HOST"], settings_dict["PORT"])
    try:
        yield stall
    finally:
        stall.close()


def connect_through(stall, deadline):
    params = connection.get_connection_params()
    params.update(host="127.0.0.1", port=stall.port)
    cls = type("Connection", (Connection,), {"answer_deadline": deadline})
    return cls.connect(**params, autocommit=True)


def test_a_query_the_server_never_answers_fails_at_the_deadline_and_drops_the_connection(db):
    with stall_in_front_of(connection.settings_dict) as stall:
        conn = connect_through(stall, DEADLINE)
        assert conn.execute("select 1").fetchone() == (1,)

        stall.frozen.set()
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError, match=r"did not answer within 0\.5 s"):
            conn.execute("select 1")
        waited = time.monotonic() - started

        assert DEADLINE <= waited < DEADLINE + 1
        assert conn.closed
        stall.frozen.clear()


def test_without_a_deadline_the_same_query_waits_for_as_long_as_the_stall(db):
    """The control: the stall is what a hung server looks like, and nothing else ends it."""
    with stall_in_front_of(connection.settings_dict) as stall:
        conn = connect_through(stall, None)
        stall.frozen.set()
        answers = []
        query = threading.Thread(target=lambda: answers.append(conn.execute("select 1").fetchone()))
        query.start()
        query.join(DEADLINE * 3)
        assert query.is_alive() and not answers

        stall.frozen.clear()
        query.join(5)
        assert answers == [(1,)]
        conn.close()


def test_the_configured_backend_connects_with_the_deadline_from_the_settings(db):
    connection.ensure_connection()

    assert isinstance(connection.connection, Connection)
    assert connection.connection.answer_deadline == 10  # statement_timeout 5 s, plus 5 s
    assert "answer_deadline" not in connection.get_connection_params()


def test_a_pool_makes_its_connections_with_the_deadline_too():
    options = {"pool": {"min_size": 1, "max_size": 4, "timeout": 5}, "answer_deadline": 3}
    wrapper = DatabaseWrapper({**connection.settings_dict, "OPTIONS": options}, alias="stalled")

    pool = wrapper.settings_dict["OPTIONS"]["pool"]
    assert pool["connection_class"] is wrapper.connection_class
    assert wrapper.connection_class.answer_deadline == 3
    assert wrapper.Database.connect == wrapper.connection_class.connect


@pytest.fixture
def stalled_database(monkeypatch):
    """The test database behind a Stall, the app's deadline cut to DEADLINE."""
    monkeypatch.setattr(connection.connection_class, "answer_deadline", DEADLINE)
    with stall_in_front_of(connection.settings_dict) as stall:
        monkeypatch.setitem(connection.settings_dict, "HOST", "127.0.0.1")
        monkeypatch.setitem(connection.settings_dict, "PORT", stall.port)
        # Persistent, as in production: the stall meets a connection that is already open (a
        # new one is bounded by connect_timeout instead).
        monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 600)
        monkeypatch.setitem(connection.settings_dict["OPTIONS"], "connect_timeout", CONNECT)
        connection.close()
        try:
            yield stall
        finally:
            stall.frozen.clear()
            connection.close()  # the next test connects to the database itself again


@pytest.mark.django_db(transaction=True)
def test_a_request_to_a_hung_database_answers_503_and_the_next_is_served_after(stalled_database):
    UserFactory(username="admin", password="pw", is_superuser=True)
    relay = RelayServerFactory()
    api = GreenArrowClient("admin", password="pw")

    def get():
        response = api.get(f"/relay_servers/{relay.id}")
        # What the WSGI handler does at every request's end (the test client does not): a
        # connection that failed is dropped, not reused.
        close_old_connections()
        return response

    assert get().status_code == 200

    stalled_database.frozen.set()
    started = time.monotonic()
    hung = get()
    waited = time.monotonic() - started
    stalled_database.frozen.clear()

    assert hung.status_code == 503
    assert hung.json()["error_code"] == "internal_error"
    # The health check before the request meets the stall (DEADLINE), then the reconnect it
    # triggers does (CONNECT): both bounded, so the answer comes well before gunicorn's timeout.
    assert waited < DEADLINE + CONNECT + 1
    assert get().status_code == 200
