"""The relay list's "Probe over SMTP" action: only for holders of `relays.probe_relayserver`
(editing a relay is not enough: a probe sends its credentials), a few relays at a time; the
request waits a few seconds at most, a probe still running then ends in the background; every
probe, fast or slow, is in the audit log with who asked, the address connected to and the
outcome; each outcome shown as what it is (a failure in red, its steps without ticks)."""

import time

import pytest
from django.contrib import messages
from django.test import Client

from relays.admin.probes import ProbeAction
from relays.models import AuditEntry
from tests.factories import UserFactory
from tests.test_probe import assert_audited_probe, relay_to, sink_fixtures, smtp_until_quit

LIST = "/admin/relays/relayserver/"

start_sink, sink, plain_sink, tls_sink, scripted = sink_fixtures()


def signed_in(username, perms=()):
    UserFactory(username=username, perms=list(perms))
    client = Client()
    client.login(username=username, password="pw")
    return client


def probe_action(client, *relays):
    began = time.monotonic()
    page = client.post(
        LIST,
        {"action": "probe_relays", "_selected_action": [relay.pk for relay in relays]},
        follow=True,
    )
    page.elapsed = time.monotonic() - began
    return page


def messages_of(page):
    return [(message.level, str(message)) for message in page.context["messages"]]


def probes():
    return list(AuditEntry.objects.filter(action=AuditEntry.Action.PROBE).order_by("id"))


@pytest.fixture
def prober(db):
    """The persona who may look at relays and probe them, not change them."""
    return signed_in("prober", ["view_relayserver", "probe_relayserver"])


def test_editing_a_relay_is_not_enough_to_probe_it(db, tls_sink):
    editor = signed_in("editor", ["view_relayserver", "change_relayserver"])
    relay = relay_to(tls_sink.port)

    listed = editor.get(LIST)
    page = probe_action(editor, relay)

    form = listed.context["action_form"]  # None: no action at all is offered
    assert form is None or "probe_relays" not in dict(form.fields["action"].choices)
    assert not any("Probe of" in text for _, text in messages_of(page))
    assert tls_sink.sessions == []
    assert probes() == []


def test_the_probe_permission_probes_and_audits_who_asked(prober, tls_sink):
    relay = relay_to(tls_sink.port)

    page = probe_action(prober, relay)

    assert [level for level, _ in messages_of(page)] == [messages.SUCCESS]
    assert tls_sink.sessions[-1]["login"] == "user-a"
    [entry] = probes()
    assert (entry.facade, entry.actor, entry.address) == ("admin", "prober", "127.0.0.1")
    assert_audited_probe(entry, relay, tls_sink.port)


def test_a_successful_probe_is_shown_at_once_with_its_steps(browser, tls_sink, monkeypatch):
    monkeypatch.setattr(ProbeAction, "PROBE_WAIT", 5.0)
    relay = relay_to(tls_sink.port)

    page = probe_action(browser, relay)

    [(level, text)] = messages_of(page)
    assert level == messages.SUCCESS
    assert text.startswith("Probe of relay-a: every step succeeded<pre>ok   connect")
    assert text.count("relay-a") == 1
    assert page.elapsed < 2  # the request waits for the probe, not for the whole wait


def test_a_failed_probe_is_red_and_its_steps_carry_no_tick(browser, tls_sink):
    relay = relay_to(tls_sink.port, destination_password="wrong")

    page = probe_action(browser, relay)

    [(level, text)] = messages_of(page)
    assert level == messages.ERROR
    assert text.startswith("Probe of relay-a: auth failed: 535 ")
    assert text.count("relay-a") == 1
    # Each <li> of the admin's message list gets the success icon: steps are lines, not items.
    assert "<li" not in text
    assert "FAIL auth" in text
    rendered = page.content.decode()
    assert rendered.count('class="success"') == 0
    assert rendered.count('class="error"') == 1
    assert probes()[0].after["outcome"] == "failed"


def test_a_loopback_destination_is_refused_and_audited(browser):
    relay = relay_to(25)

    page = probe_action(browser, relay)

    [(level, text)] = messages_of(page)
    assert level == messages.ERROR
    assert text.startswith(
        "Probe of relay-a: connect failed: refused: 127.0.0.1 is a loopback address "
        "(RELAYAPI_PROBE_ALLOW_PRIVATE allows it)<pre>FAIL connect "
    )
    [entry] = probes()
    assert (entry.after["address"], entry.after["outcome"]) == ("127.0.0.1", "failed")


def test_at_most_five_relays_are_probed_at_once(browser):
    relays = [relay_to(25, name=f"relay-{n}") for n in range(6)]

    page = probe_action(browser, *relays)

    assert messages_of(page) == [
        (messages.ERROR, "Select at most 5 relay servers to probe at once.")
    ]
    assert probes() == []


def test_a_slow_probe_is_answered_within_the_wait_and_audited_when_it_ends(
    transactional_db, browser, scripted, monkeypatch
):
    monkeypatch.setattr(ProbeAction, "PROBE_WAIT", 0.3)
    monkeypatch.setattr(ProbeAction, "PROBE_TIMEOUT", 3.0)

    def slow_greeting(peer):
        peer.stop.wait(1.0)
        smtp_until_quit(peer)

    server = scripted(slow_greeting)
    relay = relay_to(server.port, destination_username=None, destination_password=None)

    page = probe_action(browser, relay)

    assert page.elapsed < 1.0
    history = f"/admin/relays/relayserver/{relay.pk}/history/"
    assert messages_of(page) == [
        (
            messages.WARNING,
            f'Probe of relay-a: still running after 0.3 s; its outcome will be in <a href="'
            f"{history}\">the relay's history</a>.",
        )
    ]
    assert probes() == []
    for _ in range(40):
        if probes():
            break
        time.sleep(0.1)
    [entry] = probes()
    assert (entry.facade, entry.actor, entry.address) == ("admin", "admin", "127.0.0.1")
    assert entry.after["outcome"] == "ok", entry.after
    assert "probe" in browser.get(history).content.decode()
