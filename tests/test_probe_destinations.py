"""A probe connects only where mail could go: the destination is resolved once, that very
address is the one connected to, and an address of this host or of an internal network
(loopback, link-local, private, multicast, unspecified, reserved) is refused unless
RELAYAPI_PROBE_ALLOW_PRIVATE allows it. The probe cannot be turned against the host it runs on
or the networks behind it."""

import socket

import pytest

from relays import probe
from tests.test_probe import TIMEOUT, no_auth, relay_to, shown, sink_fixtures, smtp_until_quit

HINT = "(RELAYAPI_PROBE_ALLOW_PRIVATE allows it)"

start_sink, sink, plain_sink, tls_sink, scripted = sink_fixtures()


@pytest.fixture
def resolver(monkeypatch):
    """resolver(address, ...) makes destination.example resolve to each address in turn, the
    last one from then on; .calls counts the look-ups of that name."""
    real = socket.getaddrinfo

    class Resolver:
        calls = 0

        def __call__(self, *addresses):
            self.addresses = list(addresses)
            return self

    fake = Resolver()

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "destination.example":
            return real(host, port, *args, **kwargs)
        fake.calls += 1
        address = fake.addresses.pop(0) if len(fake.addresses) > 1 else fake.addresses[0]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return fake


class Listener:
    """A loopback port that counts as reached when anything connects to it."""

    def __init__(self, server):
        self.server, self.port = server, server.getsockname()[1]

    def reached(self):
        try:
            self.server.accept()[0].close()
        except BlockingIOError:
            return False
        return True


@pytest.fixture
def listener():
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.setblocking(False)
        yield Listener(server)


def test_the_setting_is_off_by_default(settings):
    assert settings.RELAYAPI_PROBE_ALLOW_PRIVATE is False


def test_a_loopback_destination_is_refused_without_connecting(db, listener):
    relay = relay_to(listener.port)

    result = probe.probe(relay, timeout=TIMEOUT)

    assert shown(result) == [("connect", False, f"refused: 127.0.0.1 is a loopback address {HINT}")]
    assert (result.address, result.port) == ("127.0.0.1", listener.port)
    assert not listener.reached()


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback"),
        ("127.9.9.9", "a loopback"),
        ("10.1.2.3", "a private"),
        ("172.16.0.1", "a private"),
        ("192.168.1.1", "a private"),
        ("169.254.169.254", "a link-local"),  # the cloud metadata service
        ("224.0.0.1", "a multicast"),
        ("0.0.0.0", "an unspecified"),  # Linux connects it to this host
        ("240.0.0.1", "a reserved"),
        ("100.64.0.1", "a non-public"),  # carrier-grade NAT
    ],
)
def test_a_name_resolving_to_an_internal_address_is_refused(db, resolver, address, kind):
    resolver(address)
    relay = relay_to(25, destination_hostname="destination.example")

    result = probe.probe(relay, timeout=TIMEOUT)

    assert shown(result) == [
        (
            "connect",
            False,
            f"refused: destination.example resolves to {address}, {kind} address {HINT}",
        )
    ]
    assert resolver.calls == 1


def test_the_setting_allows_an_internal_destination(db, settings, scripted):
    server = scripted(smtp_until_quit)
    settings.RELAYAPI_PROBE_ALLOW_PRIVATE = True

    result = probe.probe(no_auth(server.port), timeout=TIMEOUT)

    assert result.ok, result.summary()


def test_the_destination_is_resolved_once_and_that_address_is_connected_to(db, scripted, resolver):
    server = scripted(smtp_until_quit)
    # A second look-up (DNS rebinding, or a library resolving again) would give 127.0.0.3,
    # where nothing listens.
    resolver("127.0.0.1", "127.0.0.3")
    relay = no_auth(server.port, destination_hostname="destination.example")

    result = probe.probe(relay, timeout=TIMEOUT)

    assert result.ok, result.summary()
    assert resolver.calls == 1
    assert result.address == "127.0.0.1"
    assert server.heard[-1] == "QUIT"


def test_a_name_that_does_not_resolve_is_named(db, monkeypatch):
    def getaddrinfo(host, *args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    relay = relay_to(25, destination_hostname="nowhere.example")

    result = probe.probe(relay, timeout=TIMEOUT)

    assert shown(result) == [
        ("connect", False, "cannot resolve nowhere.example: Name or service not known")
    ]
    assert result.address is None
