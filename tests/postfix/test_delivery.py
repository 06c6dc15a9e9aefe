"""The store drives a real Postfix: relays created through either API are rendered and applied
(`render_postfix --apply`), and real mail arrives at aiosmtpd sinks on 127.0.0.1 from the
configured source IP, with the configured HELO name and login, split by weight, within the
throttle limits; a change takes effect when rendered again, and a broken render changes nothing.

Run once, in the PostgreSQL pass: they exercise Postfix, not the database.
"""

import io
import json
import time

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from relays.models import RelayServer
from relays.postfix import render as render_module
from tests import signed

pytestmark = pytest.mark.postgresql

RELAY = {
    "source_ip": {"ip": "127.0.0.2", "hostname": "relay-a.example"},
    "throttle_limits": {"max_concurrent_connections": 0, "max_messages_per_hour": 0},
}


@pytest.fixture
def api(admin):
    """The GreenArrow API as a superuser; .relay(name, sink, **changes) -> id, .default(name)."""

    def relay(name, sink, source="127.0.0.2", helo="relay-a.example", **changes):
        body = {
            "name": name,
            "source_ip": {"ip": source, "hostname": helo},
            "destination": {
                "hostname": "127.0.0.1",
                "port": sink.port,
                **changes.pop("destination", {}),
            },
            "throttle_limits": {"max_concurrent_connections": 0, "max_messages_per_hour": 0},
            **changes,
        }
        response = admin.post("/relay_servers", {"relay_server": body})
        assert response.status_code == 200, response.json()
        return response.json()["data"]["relay_server"]["id"]

    def rule(name, default, overrides=()):
        response = admin.post(
            "/routing_rules",
            {
                "routing_rule": {
                    "name": name,
                    "default": {"randomization_type": "random", "deliver_through": default},
                    "domain_overrides": list(overrides),
                }
            },
        )
        assert response.status_code == 200, response.json()

    def default(name):
        response = admin.put("/virtual_mtas/default", {"virtual_mta": {"name": name}})
        assert response.status_code == 200, response.json()

    admin.relay, admin.rule, admin.default = relay, rule, default
    return admin


def target(name, portion=1):
    return {"virtual_mta": {"name": name}, "portion_of_mail": portion}


def apply(postfix):
    out = io.StringIO()
    call_command(
        "render_postfix", "--apply", "--postfix-config", str(postfix.config_dir), stdout=out
    )
    return out.getvalue()


def test_a_greenarrow_relay_delivers_its_routed_domain_from_its_ip_with_its_helo_and_login(
    postfix, make_sink, api
):
    routed = make_sink(starttls=True, credentials=("user-a", "pass-a"))
    other = make_sink()
    api.relay(
        "relay-a",
        routed,
        destination={"username": "user-a", "password": "pass-a"},
    )
    api.relay("relay-b", other, source="127.0.0.3", helo="relay-b.example")
    api.rule(
        "rule-a",
        [target("relay-b")],
        [
            {
                "domains": ["example.com"],
                "randomization_type": "random",
                "deliver_through": [target("relay-a")],
            }
        ],
    )
    api.default("rule-a")

    log = apply(postfix)
    postfix.send("sender@injector.test", "someone@example.com", subject="routed")
    postfix.send("sender@injector.test", "someone@elsewhere.test", subject="default")

    (got,) = routed.wait_for(1)
    assert (got.peer, got.helo, got.login, got.tls) == (
        "127.0.0.2",
        "relay-a.example",
        "user-a",
        True,
    )
    assert got.subject == "routed"
    (fallback,) = other.wait_for(1)
    assert (fallback.peer, fallback.helo, fallback.login) == ("127.0.0.3", "relay-b.example", None)
    assert [line.split(":")[0] for line in log.splitlines()] == [
        "write",
        "postmap",
        "check",
        "swap",
        "reload",
        "flush",
    ]


def test_a_relay_created_with_boto3_delivers_too(postfix, make_sink, api, settings):
    settings.MAILMANAGER_SOURCE_IP, settings.MAILMANAGER_HELO_HOSTNAME = "127.0.0.4", "mm.example"
    sink = make_sink()
    created = signed.call(
        signed.new_key("admin"),
        "CreateRelay",
        {
            "RelayName": "from-boto3",
            "ServerName": "127.0.0.1",
            "ServerPort": sink.port,
            "Authentication": {"NoAuthentication": {}},
        },
    )
    assert created.status_code == 200, created.content
    api.default("from-boto3")

    apply(postfix)
    postfix.send("sender@injector.test", "someone@example.org")

    (got,) = sink.wait_for(1)
    assert (got.peer, got.helo) == ("127.0.0.4", "mm.example")
    assert json.loads(created.content)["RelayId"] == RelayServer.objects.get().relay_id


def test_weights_3_to_1_split_800_messages_within_5_points(postfix, make_sink, api):
    three, one = make_sink(), make_sink()
    api.relay("relay-3", three)
    api.relay("relay-1", one)
    api.rule("split", [target("relay-3", 3), target("relay-1", 1)])
    api.default("split")

    apply(postfix)
    # 800, not 400: randmap draws at random, and ±5 points is 2.3 standard deviations at 400
    # messages (a 2 % chance to fail) but 3.3 at 800 (0.1 %).
    postfix.send_many([("s@injector.test", f"r{n}@example.com", f"m{n}") for n in range(800)])
    postfix.wait_queue_empty(timeout=90)

    assert len(three.received()) + len(one.received()) == 800
    assert abs(len(three.received()) / 800 - 0.75) <= 0.05, len(three.received())


def test_max_concurrent_connections_2_is_never_exceeded(postfix, make_sink, api):
    slow = make_sink(data_delay=0.5)
    api.relay(
        "relay-c",
        slow,
        throttle_limits={"max_concurrent_connections": 2, "max_messages_per_hour": 0},
    )
    api.default("relay-c")

    apply(postfix)
    postfix.send_many([("s@injector.test", f"r{n}@example.com", f"m{n}") for n in range(10)])
    slow.wait_for(10, timeout=30)

    assert slow.max_concurrent == 2


def test_max_messages_per_hour_is_kept_within_10_percent(postfix, make_sink, api):
    sink = make_sink()
    # 3,600 an hour = 1 a second: one service, destination_rate_delay = 1s. (Above 3,600 the
    # plan adds copies of the service, spread at random: never faster than the limit, slower
    # over a short window; tests/test_postfix_render.py pins the plans.)
    api.relay(
        "relay-r",
        sink,
        throttle_limits={"max_concurrent_connections": 0, "max_messages_per_hour": 3600},
    )
    api.default("relay-r")

    apply(postfix)
    postfix.send_many([("s@injector.test", f"r{n}@example.com", f"m{n}") for n in range(16)])
    arrived = sorted(m.arrived for m in sink.wait_for(16, timeout=40))

    per_hour = (len(arrived) - 1) / (arrived[-1] - arrived[0]) * 3600
    assert abs(per_hour / 3600 - 1) <= 0.10, per_hour


def test_a_redirect_and_a_new_destination_take_effect_when_rendered_again(postfix, make_sink, api):
    first, second, third = make_sink(), make_sink(), make_sink()
    relay_a = api.relay("relay-a", first)
    api.relay("relay-b", third)
    api.default("relay-a")
    apply(postfix)
    postfix.send("s@injector.test", "r@example.com", subject="before")
    assert first.wait_for(1)[0].subject == "before"

    assert (
        api.put(
            f"/relay_servers/{relay_a}", {"relay_server": {"destination": {"port": second.port}}}
        ).status_code
        == 200
    )
    apply(postfix)
    postfix.send("s@injector.test", "r@example.com", subject="moved")
    assert (
        api.put(
            f"/relay_servers/{relay_a}", {"relay_server": {"redirect": {"name": "relay-b"}}}
        ).status_code
        == 200
    )
    second.wait_for(1)
    apply(postfix)
    postfix.send("s@injector.test", "r@example.com", subject="redirected")

    assert [m.subject for m in second.wait_for(1)] == ["moved"]
    assert [m.subject for m in third.wait_for(1)] == ["redirected"]
    assert len(first.received()) == 1


def test_a_paused_ip_holds_its_mail_in_the_queue_until_it_is_resumed(postfix, make_sink, api):
    sink = make_sink()
    relay = api.relay("relay-p", sink)
    ip = api.post(
        "/ip_addresses",
        {
            "ip_address": {
                "name": "ip-p",
                "ip": "127.0.0.5",
                "hostname": "ip-p.example",
                "delivery_paused": True,
                "default": {"max_concurrent_connections": 0, "max_messages_per_hour": 0},
            }
        },
    ).json()["data"]["ip_address"]["id"]
    api.put(f"/relay_servers/{relay}", {"relay_server": {"redirect": {"name": "ip-p"}}})
    api.default("relay-p")
    apply(postfix)

    assert postfix.send("s@injector.test", "r@example.com", subject="held") == {}  # accepted
    time.sleep(3)  # the queue is run every second: unheld, it would have been tried by now
    held = postfix.queue()
    # Resumed, and sent through relay-p again: the held message goes out on the flush.
    api.put(f"/ip_addresses/{ip}", {"ip_address": {"delivery_paused": False}})
    api.put(f"/relay_servers/{relay}", {"relay_server": {"redirect": None}})
    apply(postfix)

    assert len(held) == 1  # waiting in the queue, not bounced, not refused
    assert [m.subject for m in sink.wait_for(1)] == ["held"]


def test_a_record_postfix_cannot_take_is_held_while_the_rest_applies(postfix, make_sink, api):
    """A value the write rules refuse, written in SQL (older data): that relay's mail waits in
    the queue, and the apply goes through for everything else (an IP address's pause reaches
    Postfix beside it); fixed, the held mail goes out."""
    sink = make_sink()
    relay = api.relay("relay-a", sink)
    ip = api.post(
        "/ip_addresses",
        {
            "ip_address": {
                "name": "ip-a",
                "ip": "127.0.0.5",
                "hostname": "ip-a.example",
                "default": {"max_concurrent_connections": 0, "max_messages_per_hour": 0},
            }
        },
    ).json()["data"]["ip_address"]["id"]
    api.default("relay-a")
    apply(postfix)
    RelayServer.objects.filter(pk=relay).update(destination_username="a:b")
    api.put(f"/ip_addresses/{ip}", {"ip_address": {"delivery_paused": True}})

    output = apply(postfix)

    main = (postfix.config_dir / "main.cf").read_text()
    held = next(line for line in main.splitlines() if line.startswith("defer_transports = "))
    assert f"relayapi_r{relay}" in held and f"relayapi_ip{ip}" in held
    assert postfix.send("s@injector.test", "r@example.com", subject="held") == {}  # accepted
    time.sleep(3)  # the queue is run every second: unheld, it would have been tried by now
    assert len(postfix.queue()) == 1  # waiting, not bounced
    RelayServer.objects.filter(pk=relay).update(destination_username=None)
    apply(postfix)
    assert [m.subject for m in sink.wait_for(1)] == ["held"]
    assert "reload" in output


def test_a_broken_render_leaves_the_running_postfix_untouched_and_delivering(
    postfix, make_sink, api, monkeypatch
):
    sink = make_sink()
    api.relay("relay-a", sink)
    api.default("relay-a")
    apply(postfix)
    before = {name: (postfix.config_dir / name).read_text() for name in ("main.cf", "master.cf")}

    # The rendering does not pass `postfix check` (a table that does not exist).
    real = render_module.render

    def broken(base):
        rendering = real(base)
        rendering.main_cf += "transport_maps = hash:/nonexistent/relayapi-table\n"
        return rendering

    monkeypatch.setattr("relays.postfix.install.render", broken)
    with pytest.raises(CommandError, match="nothing changed: check failed: "):
        apply(postfix)

    assert {name: (postfix.config_dir / name).read_text() for name in before} == before
    postfix.send("s@injector.test", "r@example.com", subject="still delivering")
    assert sink.wait_for(1)[0].subject == "still delivering"
