"""Races that only a real server with real concurrent transactions can show (PostgreSQL)."""

import threading

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
