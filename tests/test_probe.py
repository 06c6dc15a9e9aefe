"""A relay server is probed over SMTP as Postfix would reach it (`manage.py probe_relay`, the
admin's "Probe" action): from its source IP, with its HELO name, STARTTLS when offered, AUTH
with its stored credentials (only over TLS), QUIT; each step timed with the server's reply; no
message sent.

The sinks here (aiosmtpd, and `scripted` servers that say exactly what a test needs) listen on
127.0.0.1, so they turn RELAYAPI_PROBE_ALLOW_PRIVATE on (tests/test_probe_destinations.py shows
it is off by default). The other tests/test_probe_*.py files use these helpers.
"""

import base64
import contextlib
import json
import socket
import ssl
import threading

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from deploy.nginx.loopback import self_signed_certificate
from relays import probe
from tests.factories import RelayServerFactory

TIMEOUT = 2  # seconds for a whole probe of a sink that answers at once


class Sink:
    """Records what a probe does; accepts AUTH only as user-a / right-password."""

    def __init__(self):
        self.sessions, self.messages, self.auth_attempts = [], [], 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.sessions.append({"peer": session.peer[0], "helo": hostname})
        return responses

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, data):
        self.auth_attempts += 1
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"user-a",
            b"right-password",
        )
        if ok:
            self.sessions[-1]["login"] = data.login.decode()
        return AuthResult(success=ok, handled=False)  # False: aiosmtpd answers 535


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_tls_context(directory):
    cert, key = self_signed_certificate(directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class Peer:
    """One client of a scripted server, as its script sees it; every line it hears is kept in
    `heard` (the server's, across clients)."""

    def __init__(self, connection, stop, heard):
        self.connection, self.stop, self.heard = connection, stop, heard
        self.file = connection.makefile("rb")

    def say(self, *lines):
        self.connection.sendall(b"".join(line.encode() + b"\r\n" for line in lines))

    def send(self, data):
        self.connection.sendall(data)

    def hear(self):
        line = self.file.readline().decode().rstrip("\r\n")
        self.heard.append(line)
        return line

    def starttls(self, context):
        self.connection = context.wrap_socket(self.connection, server_side=True)
        self.file = self.connection.makefile("rb")


class Scripted:
    def __init__(self, port, heard):
        self.port, self.heard = port, heard


def smtp_until_quit(peer, *, ehlo=("250-sink.example", "250 AUTH PLAIN LOGIN")):
    """Answer as a plain SMTP server would, until QUIT or the client goes."""
    peer.say("220 sink.example ESMTP")
    while line := peer.hear():
        verb = line.split(" ", 1)[0].upper()
        if verb == "EHLO":
            peer.say(*ehlo)
        elif verb == "QUIT":
            peer.say("221 bye")
            return
        else:
            peer.say("502 not here")


def sink_fixtures():
    """`start_sink, sink, plain_sink, tls_sink, scripted` for a module of probe tests (assign
    them all at its top level: each needs the ones before it)."""

    @pytest.fixture
    def start_sink(tmp_path, settings):
        """start_sink(tls) -> an aiosmtpd server offering AUTH PLAIN and LOGIN, with STARTTLS or
        without; it would take AUTH in clear (auth_require_tls=False), so only the probe keeps
        credentials off the wire."""
        settings.RELAYAPI_PROBE_ALLOW_PRIVATE = True
        controllers = []

        def start(tls):
            handler = Sink()
            options = {"tls_context": server_tls_context(tmp_path)} if tls else {}
            controller = Controller(
                handler,
                hostname="127.0.0.1",
                port=free_port(),
                authenticator=handler.authenticate,
                auth_require_tls=False,
                **options,
            )
            controller.start()
            controllers.append(controller)
            handler.port, handler.tls = controller.port, tls
            return handler

        yield start
        for controller in controllers:
            controller.stop()

    @pytest.fixture(params=["plain", "starttls"])
    def sink(request, start_sink):
        return start_sink(request.param == "starttls")

    @pytest.fixture
    def plain_sink(start_sink):
        return start_sink(False)

    @pytest.fixture
    def tls_sink(start_sink):
        return start_sink(True)

    @pytest.fixture
    def scripted(settings):
        """scripted(script) -> a loopback server (its .port, the lines it .heard) that runs
        script(peer) for each client; scripts that go on forever end when peer.stop is set."""
        settings.RELAYAPI_PROBE_ALLOW_PRIVATE = True
        stops, listeners = [], []

        def start(script):
            listener = socket.create_server(("127.0.0.1", 0))
            stop, heard = threading.Event(), []

            def talk(connection):
                with connection, contextlib.suppress(OSError):  # the client went away
                    script(Peer(connection, stop, heard))

            def serve():
                while True:
                    try:
                        connection, _ = listener.accept()
                    except OSError:
                        return
                    threading.Thread(target=talk, args=(connection,), daemon=True).start()

            threading.Thread(target=serve, daemon=True).start()
            stops.append(stop)
            listeners.append(listener)
            return Scripted(listener.getsockname()[1], heard)

        yield start
        for stop in stops:
            stop.set()
        for listener in listeners:
            listener.close()

    return start_sink, sink, plain_sink, tls_sink, scripted


def relay_to(port, **changes):
    fields = {
        "name": "relay-a",
        "source_ip": "127.0.0.2",
        "source_hostname": "relay-a.example",
        "destination_hostname": "127.0.0.1",
        "destination_port": port,
        "destination_username": "user-a",
        "destination_password": "right-password",
    }
    return RelayServerFactory(**{**fields, **changes})


def no_auth(port, **changes):
    """A relay to `port` with no credentials (so no TLS is needed)."""
    return relay_to(port, destination_username=None, destination_password=None, **changes)


def assert_audited_probe(entry, relay, port):
    """`entry` is the audit entry of a successful STARTTLS + AUTH probe of `relay` (made by
    relay_to) at 127.0.0.1:`port`: where it connected, the outcome, each step, no credential."""
    assert (entry.record_type, entry.record_id, entry.record_name) == (
        "relay_server",
        relay.pk,
        "relay-a",
    )
    assert entry.before is None
    assert entry.after["address"] == "127.0.0.1"
    assert entry.after["port"] == port
    assert entry.after["outcome"] == "ok"
    assert entry.after["summary"] == "relay-a: every step succeeded"
    assert [step["name"] for step in entry.after["steps"]] == [
        "connect",
        "ehlo",
        "starttls",
        "auth",
        "quit",
    ]
    assert set(entry.after["steps"][0]) == {"name", "ok", "milliseconds", "reply"}
    text = json.dumps(entry.after)
    assert "right-password" not in text and "user-a" not in text


def shown(result):
    return [(step.name, step.ok, step.reply) for step in result.steps]


start_sink, sink, plain_sink, tls_sink, scripted = sink_fixtures()


def test_a_probe_over_starttls_succeeds_from_the_source_ip_with_the_helo_and_login(db, tls_sink):
    result = probe.probe(relay_to(tls_sink.port), timeout=TIMEOUT)

    assert [step.name for step in result.steps] == [
        "connect",
        "ehlo",
        "starttls",
        "auth",
        "quit",
    ], shown(result)
    assert result.ok, result.summary()
    assert result.summary() == "relay-a: every step succeeded"
    assert (result.address, result.port) == ("127.0.0.1", tls_sink.port)
    assert tls_sink.sessions[-1] == {
        "peer": "127.0.0.2",
        "helo": "relay-a.example",
        "login": "user-a",
    }
    assert tls_sink.messages == []  # nothing is ever sent
    assert result.steps[0].reply.startswith("220 ")
    assert result.steps[2].reply.startswith("220 ") and "TLSv1." in result.steps[2].reply
    assert all(step.milliseconds >= 0 for step in result.steps)


def test_credentials_are_never_sent_to_a_server_without_starttls(db, plain_sink):
    sink = plain_sink

    result = probe.probe(relay_to(sink.port), timeout=TIMEOUT)

    assert shown(result)[2:] == [("auth", False, "server offers no STARTTLS: credentials not sent")]
    assert result.summary() == (
        "relay-a: auth failed: server offers no STARTTLS: credentials not sent"
    )
    assert sink.auth_attempts == 0
    assert "login" not in sink.sessions[-1]


def test_a_relay_without_credentials_needs_neither_tls_nor_auth(db, sink):
    relay = relay_to(sink.port, destination_username=None, destination_password=None)

    result = probe.probe(relay, timeout=TIMEOUT)

    names = [step.name for step in result.steps]
    assert names == ["connect", "ehlo", *(["starttls"] if sink.tls else []), "quit"]
    assert result.ok, result.summary()
    assert sink.auth_attempts == 0


def test_a_wrong_password_is_a_clear_failure(db, tls_sink):
    relay = relay_to(tls_sink.port, destination_password="wrong")

    result = probe.probe(relay, timeout=TIMEOUT)

    assert not result.ok
    assert result.steps[-1].name == "auth"
    assert result.steps[-1].reply.startswith("535 ")
    assert result.summary() == f"relay-a: auth failed: {result.steps[-1].reply}"


def test_a_refused_starttls_ends_the_probe_before_any_credential(db, scripted):
    def refuse_tls(peer):
        smtp_until_quit(peer, ehlo=("250-sink.example", "250-STARTTLS", "250 AUTH PLAIN"))

    server = scripted(refuse_tls)

    result = probe.probe(relay_to(server.port), timeout=TIMEOUT)

    assert shown(result)[2] == ("starttls", False, "502 not here")
    assert [step.name for step in result.steps] == ["connect", "ehlo", "starttls"]
    assert not any(line.upper().startswith("AUTH") for line in server.heard)


def test_credentials_a_server_echoes_back_are_not_shown(db, scripted, tmp_path):
    context = server_tls_context(tmp_path)

    def echo_auth(peer):
        peer.say("220 sink.example ESMTP")
        peer.hear()
        peer.say("250-sink.example", "250-STARTTLS", "250 AUTH PLAIN")
        peer.hear()
        peer.say("220 go ahead")
        peer.starttls(context)
        peer.hear()
        peer.say("250-sink.example", "250 AUTH PLAIN")
        line = peer.hear()
        blob = line.split()[-1]
        plain = base64.b64decode(blob).decode().replace("\0", " ")
        peer.say(f"535 you sent {line} that is {plain}")

    server = scripted(echo_auth)

    result = probe.probe(relay_to(server.port), timeout=TIMEOUT)

    assert result.steps[-1].name == "auth"
    assert result.steps[-1].reply == (
        "535 you sent AUTH PLAIN (redacted) that is (redacted) (redacted)"
    )
    for step in result.steps:
        assert "right-password" not in step.reply and "user-a" not in step.reply


def test_a_closed_port_is_a_clear_failure(db, settings):
    settings.RELAYAPI_PROBE_ALLOW_PRIVATE = True

    result = probe.probe(relay_to(free_port()), timeout=TIMEOUT)

    assert shown(result) == [
        ("connect", False, "connection refused (nothing listens on that port)")
    ]


def test_a_source_ip_that_is_not_this_host_s_is_named(db, settings):
    settings.RELAYAPI_PROBE_ALLOW_PRIVATE = True
    relay = relay_to(free_port(), source_ip="192.0.2.55")

    result = probe.probe(relay, timeout=TIMEOUT)

    assert result.steps[0].reply == "cannot send from 192.0.2.55: not an address of this host"
