"""Races that only a real server with real concurrent transactions can show (PostgreSQL)."""

import threading
from functools import partial

import pytest
from django.db import connection

from relays.models import VirtualMta
from tests.conftest import GreenArrowClient, relay_payload
from tests.factories import UserFactory

pytestmark = [pytest.mark.postgresql, pytest.mark.django_db(transaction=True)]


def race(*requests):
    """Run the callables at the same moment, each on its own thread and connection."""
    barrier = threading.Barrier(len(requests))
    results = [None] * len(requests)

    def run(i, request):
        try:
            barrier.wait()
            results[i] = request()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, r)) for i, r in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_concurrent_creates_of_one_name_in_two_cases(db):
    UserFactory(username="admin", is_superuser=True)
    for round in range(20):
        clients = [GreenArrowClient("admin"), GreenArrowClient("admin")]
        names = [f"Relay-{round}", f"relay-{round}"]

        responses = race(
            *(
                lambda c=c, n=n: c.post("/relay_servers", relay_payload(name=n))
                for c, n in zip(clients, names, strict=True)
            )
        )

        statuses = sorted(r.status_code for r in responses)
        assert statuses == [200, 400], [r.json() for r in responses]
        refused = next(r for r in responses if r.status_code == 400).json()
        assert refused["error_code"] == "validation_failed"
        assert "is already used by" in refused["error_messages"][0]
        assert VirtualMta.objects.filter(name__iexact=f"relay-{round}").count() == 1


def test_two_puts_closing_a_loop_from_both_ends_never_both_win(db):
    """50 rounds: A.redirect = R and R.deliver_through = [A] sent at the same moment."""
    from relays.models import DeliverThrough, IpAddress
    from relays.references import find_loop
    from tests.factories import RelayServerFactory, RoutingRuleFactory

    UserFactory(username="admin", is_superuser=True)
    anchor = IpAddress.objects.create(name="anchor", ip="10.0.0.1", hostname="anchor.example.com")
    for round in range(50):
        relay = RelayServerFactory(name=f"A-{round}")
        rule = RoutingRuleFactory(name=f"R-{round}", targets=[(anchor, 1)])
        close_from_relay = {"relay_server": {"redirect": {"id": rule.id}}}
        close_from_rule = {
            "routing_rule": {
                "default": {
                    "deliver_through": [{"virtual_mta": {"id": relay.id}, "portion_of_mail": 1}]
                }
            }
        }
        clients = [GreenArrowClient("admin"), GreenArrowClient("admin")]

        responses = race(
            partial(clients[0].put, f"/relay_servers/{relay.id}", close_from_relay),
            partial(clients[1].put, f"/routing_rules/{rule.id}", close_from_rule),
        )

        assert sorted(r.status_code for r in responses) == [200, 400], [r.json() for r in responses]
        refused = next(r for r in responses if r.status_code == 400).json()
        assert "would create a delivery loop" in refused["error_messages"][0]
        relay.refresh_from_db()
        targets = list(
            DeliverThrough.objects.filter(rule=rule).values_list("virtual_mta_id", flat=True)
        )
        assert find_loop(relay.id, [relay.redirect_id] if relay.redirect_id else []) is None
        assert find_loop(rule.id, targets) is None
