"""A relay server is probed over SMTP as Postfix would reach it (`manage.py probe_relay`, the
admin's "Probe" action): from its source IP, with its HELO name, STARTTLS when offered, AUTH
with its stored credentials, QUIT; each step timed with the server's reply; no message sent."""

import io
import socket
import ssl

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from django.core.management import call_command
from django.core.management.base import CommandError

from deploy.nginx.loopback import self_signed_certificate
from relays import probe
from tests.factories import RelayServerFactory


class Sink:
    """Records what a probe does; accepts AUTH only as user-a / right-password."""

    def __init__(self):
        self.sessions, self.messages = [], []

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self.sessions.append({"peer": session.peer[0], "helo": hostname})
        return responses

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(envelope)
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, data):
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


@pytest.fixture(params=["plain", "starttls"])
def sink(request, tmp_path):
    handler = Sink()
    options = {}
    if request.param == "starttls":
        cert, key = self_signed_certificate(tmp_path)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        options = {"tls_context": context}
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=handler.authenticate,
        auth_require_tls=False,
        **options,
    )
    controller.start()
    handler.port, handler.tls = controller.port, request.param == "starttls"
    yield handler
    controller.stop()


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


def test_a_probe_succeeds_from_the_source_ip_with_the_helo_and_the_login(db, sink):
    result = probe.probe(relay_to(sink.port), timeout=5)

    names = [step.name for step in result.steps]
    assert names == ["connect", "ehlo", *(["starttls"] if sink.tls else []), "auth", "quit"]
    assert result.ok, result.summary()
    assert sink.sessions[-1] == {"peer": "127.0.0.2", "helo": "relay-a.example", "login": "user-a"}
    assert sink.messages == []  # nothing is ever sent
    assert result.steps[0].reply.startswith("220 ")
    assert all(step.milliseconds >= 0 for step in result.steps)


def test_a_wrong_password_is_a_clear_failure(db, sink):
    relay = relay_to(sink.port, destination_password="wrong")

    result = probe.probe(relay, timeout=5)

    assert not result.ok
    assert result.steps[-1].name == "auth"
    assert result.steps[-1].reply.startswith("535 ")
    assert result.summary() == f"relay-a: auth failed: {result.steps[-1].reply}"


def test_a_closed_port_is_a_clear_failure(db):
    result = probe.probe(relay_to(free_port()), timeout=5)

    assert [(s.name, s.ok, s.reply) for s in result.steps] == [
        ("connect", False, "connection refused (nothing listens on that port)")
    ]


def test_a_source_ip_that_is_not_this_host_s_is_named(db):
    relay = relay_to(free_port(), source_ip="192.0.2.55")

    result = probe.probe(relay, timeout=5)

    assert result.steps[0].reply == "cannot send from 192.0.2.55: not an address of this host"


def test_the_command_prints_each_step_and_fails_on_a_failed_step(db, sink):
    relay = relay_to(sink.port)
    out = io.StringIO()

    call_command("probe_relay", "RELAY-A", stdout=out)
    relay.destination_password = "wrong"
    relay.save()
    with pytest.raises(CommandError, match="relay-a: auth failed: 535 "):
        call_command("probe_relay", str(relay.pk), stdout=io.StringIO())

    lines = out.getvalue().splitlines()
    assert lines[0] == f"relay server {relay.pk} (relay-a): 127.0.0.2 -> 127.0.0.1:{sink.port}"
    assert lines[1].startswith("ok   connect")
    assert lines[-1].startswith("ok   quit")


@pytest.mark.parametrize("name", ["nope", "99999999999999999999999", "\ud800"])
def test_the_command_names_an_unknown_relay(db, name):
    with pytest.raises(CommandError, match="no relay server with id or name"):
        call_command("probe_relay", name)


def test_the_admin_action_reports_each_probe(browser, sink):
    relay = relay_to(sink.port)

    page = browser.post(
        "/admin/relays/relayserver/",
        {"action": "probe_relays", "_selected_action": [relay.pk]},
        follow=True,
    )

    shown = [str(m) for m in page.context["messages"]]
    assert len(shown) == 1
    assert shown[0].startswith(
        "Probe of relay-a: relay-a: every step succeeded<ul><li>ok   connect"
    )
    assert sink.messages == []
