"""`manage.py probe_relay RELAY [--timeout SECONDS]`: each step with its time and the server's
reply, exit status 1 when one fails; `--timeout` bounds the whole probe; every probe is in the
audit log (door `command`, the operating-system user), never with a credential."""

import io
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from relays import audit
from relays.models import AuditEntry
from tests.test_probe import assert_audited_probe, relay_to, sink_fixtures

start_sink, sink, plain_sink, tls_sink, scripted = sink_fixtures()


def test_the_command_prints_each_step_and_fails_on_a_failed_step(db, tls_sink):
    relay = relay_to(tls_sink.port)
    out = io.StringIO()

    call_command("probe_relay", "RELAY-A", "--timeout", "2", stdout=out)
    relay.destination_password = "wrong"
    relay.save()
    with pytest.raises(CommandError, match=r"^relay-a: auth failed: 535 "):
        call_command("probe_relay", str(relay.pk), "--timeout", "2", stdout=io.StringIO())

    lines = out.getvalue().splitlines()
    assert lines[0] == f"relay server {relay.pk} (relay-a): 127.0.0.2 -> 127.0.0.1:{tls_sink.port}"
    assert lines[1].startswith("ok   connect")
    assert lines[-1].startswith("ok   quit")


def test_the_command_audits_each_probe_without_credentials(db, tls_sink):
    relay = relay_to(tls_sink.port)

    call_command("probe_relay", "relay-a", "--timeout", "2", stdout=io.StringIO())

    entry = AuditEntry.objects.get(action=AuditEntry.Action.PROBE)
    assert (entry.facade, entry.actor, entry.actor_id) == ("command", audit.os_user(), None)
    assert_audited_probe(entry, relay, tls_sink.port)


def test_the_command_s_timeout_bounds_the_whole_probe(db, scripted):
    def drip(peer):
        while not peer.stop.wait(0.2):
            peer.send(b"2")

    server = scripted(drip)
    relay_to(server.port)
    began = time.monotonic()

    with pytest.raises(CommandError, match="within the probe's 1 s deadline"):
        call_command("probe_relay", "relay-a", "--timeout", "1", stdout=io.StringIO())

    assert time.monotonic() - began < 1.5
    entry = AuditEntry.objects.get(action=AuditEntry.Action.PROBE)
    assert entry.after["outcome"] == "failed"


@pytest.mark.parametrize("timeout", ["0", "-1", "121", "nan"])
def test_the_command_refuses_a_timeout_out_of_range(db, timeout):
    relay_to(25)

    with pytest.raises(CommandError, match="--timeout must be"):
        call_command("probe_relay", "relay-a", "--timeout", timeout)

    assert not AuditEntry.objects.filter(action=AuditEntry.Action.PROBE).exists()


@pytest.mark.parametrize("name", ["nope", "99999999999999999999999", "\ud800"])
def test_the_command_names_an_unknown_relay(db, name):
    with pytest.raises(CommandError, match="no relay server with id or name"):
        call_command("probe_relay", name)
