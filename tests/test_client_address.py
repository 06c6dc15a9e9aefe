"""The client's address: the connection's own, unless it comes from a proxy the deployment
trusts (RELAYAPI_TRUSTED_PROXIES: addresses, networks, or `unix` for gunicorn's Unix socket,
whose connections gunicorn gives an empty REMOTE_ADDR); then the rightmost X-Forwarded-For entry
that is not a trusted proxy."""

import os
import subprocess
import sys

import pytest
from django.test import RequestFactory

from relayapi.clients import client_address, from_trusted_proxy


def address(remote, forwarded=None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_address(RequestFactory().get("/", **extra))


def test_without_trusted_proxies_the_header_is_ignored(settings):
    settings.RELAYAPI_TRUSTED_PROXIES = []

    assert address("127.0.0.1", "203.0.113.9") == "127.0.0.1"


def test_from_a_trusted_proxy_the_forwarded_client_counts(settings):
    settings.RELAYAPI_TRUSTED_PROXIES = ["127.0.0.1"]

    assert address("127.0.0.1", "203.0.113.9") == "203.0.113.9"


def test_entries_a_client_wrote_left_of_the_proxys_are_ignored(settings):
    settings.RELAYAPI_TRUSTED_PROXIES = ["127.0.0.1"]

    # The client sent "X-Forwarded-For: 10.9.9.9"; the proxy appended what it saw.
    assert address("127.0.0.1", "10.9.9.9, 203.0.113.9") == "203.0.113.9"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right(settings):
    settings.RELAYAPI_TRUSTED_PROXIES = ["127.0.0.1", "10.0.0.0/8"]

    assert address("127.0.0.1", "198.51.100.1, 203.0.113.9, 10.1.2.3") == "203.0.113.9"


def test_a_connection_not_from_a_trusted_proxy_is_the_client(settings):
    settings.RELAYAPI_TRUSTED_PROXIES = ["127.0.0.1"]

    assert address("198.51.100.7", "203.0.113.9") == "198.51.100.7"


@pytest.mark.parametrize("forwarded", [None, "", "not-an-address", "203.0.113.9, garbage"])
def test_a_missing_or_unreadable_header_leaves_the_last_trusted_hop(settings, forwarded):
    settings.RELAYAPI_TRUSTED_PROXIES = ["127.0.0.1"]

    assert address("127.0.0.1", forwarded) == "127.0.0.1"


def test_ipv6_and_mapped_ipv4_addresses_are_normalised(settings):
    settings.RELAYAPI_TRUSTED_PROXIES = ["::1"]

    assert address("::ffff:198.51.100.7") == "198.51.100.7"
    assert address("::1", "2001:DB8::1") == "2001:db8::1"


def test_a_connection_without_an_address_has_none(settings):
    assert address("") is None


def test_a_trusted_unix_socket_is_the_proxy(settings):
    settings.RELAYAPI_TRUSTED_PROXIES = ["unix"]

    assert address("", "10.9.9.9, 203.0.113.9") == "203.0.113.9"
    assert address("") is None  # nobody forwarded for it: no address known


def test_with_the_unix_socket_trusted_a_loopback_connection_names_itself(settings):
    """The finding: with 127.0.0.1 trusted, every local process that could open a TCP
    connection to gunicorn was "the proxy" and chose its own address. Trusting the socket
    (which only nginx may open) trusts nothing that comes over TCP."""
    settings.RELAYAPI_TRUSTED_PROXIES = ["unix"]
    forged = RequestFactory().get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.1")

    assert client_address(forged) == "127.0.0.1"
    assert not from_trusted_proxy(forged)
    assert from_trusted_proxy(RequestFactory().get("/", REMOTE_ADDR=""))


def test_the_socket_is_not_trusted_unless_named(settings):
    settings.RELAYAPI_TRUSTED_PROXIES = ["127.0.0.1"]

    assert address("", "203.0.113.9") is None
    assert not from_trusted_proxy(RequestFactory().get("/", REMOTE_ADDR=""))


def test_the_socket_and_networks_behind_it_form_one_chain(settings):
    settings.RELAYAPI_TRUSTED_PROXIES = ["unix", "10.0.0.0/8"]

    assert address("", "198.51.100.1, 203.0.113.9, 10.1.2.3") == "203.0.113.9"


def test_a_trusted_proxy_that_is_not_an_address_stops_start_up():
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"},
        "DEBUG": "1",
        "RELAYAPI_TRUSTED_PROXIES": "127.0.0.1,nginx.internal",
    }
    result = subprocess.run(
        [sys.executable, "-c", "import relayapi.settings"],
        env=env,
        capture_output=True,
        text=True,
    )

    assert result.returncode != 0
    assert (
        "RELAYAPI_TRUSTED_PROXIES: 'nginx.internal' is not an IP address, a network or `unix`"
        in result.stderr
    )
