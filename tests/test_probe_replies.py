"""What a probe shows of the server, and how long it waits for it: only SMTP-shaped replies are
shown (a 3-digit code, a space or hyphen, printable text, bounded length); anything else is
"not an SMTP server", never echoed. One deadline bounds the whole probe, every read included,
so a server that drips bytes or says nothing cannot hold an admin worker or the command."""

import socket
import time

import pytest

from relays import probe
from tests.test_probe import TIMEOUT, no_auth, relay_to, shown, sink_fixtures, smtp_until_quit

DEADLINE = 1.0
SLACK = 0.5  # scheduling, and the thread that starts the server

start_sink, sink, plain_sink, tls_sink, scripted = sink_fixtures()


def timed(relay, timeout=DEADLINE):
    began = time.monotonic()
    result = probe.probe(relay, timeout=timeout)
    return result, time.monotonic() - began


@pytest.mark.parametrize(
    "banner",
    [
        b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
        b"HTTP/1.1 400 Bad Request\r\nServer: secret-internal/1.0\r\n\r\n",
        b"220hello secret-internal\r\n",  # no space or hyphen after the code
        b"220 secret-internal \x1b[31mred\r\n",  # a terminal escape
        b"220 secret-internal \xff\xfe\r\n",  # not UTF-8
        b"220 secret-internal \xe2\x80\xae\r\n",  # a bidirectional override
        b"\x00\x01\x02secret-internal\n",
        b"220-secret-internal\r\n250 and another code\r\n",
    ],
)
def test_a_banner_that_is_not_smtp_is_named_but_never_shown(db, scripted, banner):
    def speak(peer):
        peer.send(banner)
        peer.stop.wait(5)

    server = scripted(speak)

    result = probe.probe(no_auth(server.port), timeout=TIMEOUT)

    assert shown(result) == [("connect", False, "not an SMTP server")]
    assert "secret-internal" not in result.summary()
    assert "OpenSSH" not in result.summary()


def test_a_multiline_greeting_and_a_bare_code_are_smtp(db, scripted):
    def greet(peer):
        peer.say("220-sink.example first", "220-second", "220")
        peer.hear()
        peer.say("250-sink.example", "250")
        peer.hear()
        peer.say("221")

    server = scripted(greet)

    result = probe.probe(no_auth(server.port), timeout=TIMEOUT)

    assert result.ok, result.summary()
    assert shown(result)[0] == ("connect", True, "220 sink.example first")


def test_a_reply_line_over_512_bytes_ends_the_probe(db, scripted):
    def long_line(peer):
        peer.say("220 " + "x" * 600)
        peer.stop.wait(5)

    server = scripted(long_line)

    result = probe.probe(no_auth(server.port), timeout=TIMEOUT)

    assert shown(result) == [("connect", False, "reply too long")]


def test_an_endless_line_without_a_newline_ends_the_probe(db, scripted):
    def endless(peer):
        peer.send(b"220 ")
        while not peer.stop.is_set():
            peer.send(b"x" * 1024)

    server = scripted(endless)

    result, elapsed = timed(no_auth(server.port))

    assert shown(result) == [("connect", False, "reply too long")]
    assert elapsed < DEADLINE


def test_a_multiline_reply_over_4_kb_ends_the_probe(db, scripted):
    def many_lines(peer):
        smtp_until_quit(peer, ehlo=[f"250-extension-{n:03d} {'x' * 40}" for n in range(100)])

    server = scripted(many_lines)

    result = probe.probe(no_auth(server.port), timeout=TIMEOUT)

    assert shown(result)[1:] == [("ehlo", False, "reply too long")]


def test_a_server_dripping_a_byte_at_a_time_is_cut_off_at_the_deadline(db, scripted):
    def drip(peer):
        while not peer.stop.wait(0.2):
            peer.send(b"2")

    server = scripted(drip)

    result, elapsed = timed(no_auth(server.port))

    assert shown(result) == [
        ("connect", False, "no complete answer within the probe's 1 s deadline")
    ]
    assert DEADLINE <= elapsed < DEADLINE + SLACK


def test_a_silent_server_is_cut_off_at_the_deadline(db, scripted):
    server = scripted(lambda peer: peer.stop.wait(5))

    result, elapsed = timed(no_auth(server.port))

    assert shown(result) == [
        ("connect", False, "no complete answer within the probe's 1 s deadline")
    ]
    assert elapsed < DEADLINE + SLACK


def test_the_deadline_bounds_the_whole_probe_not_each_step(db, scripted):
    def slow(peer):
        # Each answer well within a 1 s step timeout; all of them not within 1 s.
        peer.stop.wait(0.4)
        peer.say("220 sink.example")
        while line := peer.hear():
            peer.stop.wait(0.4)
            peer.say("221 bye" if line == "QUIT" else "250 sink.example")

    server = scripted(slow)

    result, elapsed = timed(no_auth(server.port))

    assert [(name, ok) for name, ok, _ in shown(result)] == [
        ("connect", True),
        ("ehlo", True),
        ("quit", False),
    ]
    assert result.steps[-1].reply == "no complete answer within the probe's 1 s deadline"
    assert elapsed < DEADLINE + SLACK


def test_a_name_that_takes_too_long_to_resolve_is_cut_off_at_the_deadline(db, monkeypatch):
    real = socket.getaddrinfo

    def slow_dns(host, *args, **kwargs):
        if host == "slow.example":
            time.sleep(3)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", slow_dns)

    result, elapsed = timed(relay_to(25, destination_hostname="slow.example"))

    assert shown(result) == [
        ("connect", False, "cannot resolve slow.example: no answer within the probe's 1 s deadline")
    ]
    assert elapsed < DEADLINE + SLACK
