"""CreateRelay's ClientToken: retries return the first result; tokens live in the database."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from relays.models import ClientToken, RelayServer
from tests.conftest import create

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_retry_with_the_same_token_returns_the_same_relay(mm):
    first = create(mm, "relay-a", ClientToken="token-1")
    again = create(mm, "relay-a", ClientToken="token-1")

    assert again == first
    assert RelayServer.objects.count() == 1


def test_the_same_token_with_other_parameters_is_a_conflict(mm):
    create(mm, "relay-a", ClientToken="token-1")

    with pytest.raises(mm.exceptions.ConflictException, match="ClientToken"):
        create(mm, "relay-b", ClientToken="token-1")
    assert RelayServer.objects.count() == 1


def test_a_token_expires_after_24_hours(mm):
    first = create(mm, "relay-a", ClientToken="token-1")
    ClientToken.objects.update(created_at=timezone.now() - timedelta(hours=24, minutes=1))

    second = create(mm, "relay-b", ClientToken="token-1")

    assert second != first
    assert RelayServer.objects.count() == 2


def test_a_refused_create_does_not_use_up_its_token(mm):
    RelayServer.objects.create(
        name="taken",
        source_ip="127.0.0.1",
        source_hostname="h",
        destination_hostname="d",
        destination_port=25,
        max_concurrent_connections=0,
        max_messages_per_hour=0,
    )
    with pytest.raises(mm.exceptions.ConflictException):
        create(mm, "taken", ClientToken="token-1")

    assert not ClientToken.objects.exists()
    assert create(mm, "fresh", ClientToken="token-1")


@pytest.mark.postgresql
def test_twenty_concurrent_creates_with_one_token_make_one_relay(mm):
    barrier = threading.Barrier(20)
    results = []

    def call():
        try:
            barrier.wait()
            results.append(create(mm, "relay-race", ClientToken="one-token"))
        finally:
            connection.close()

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(results) == 20
    assert len(set(results)) == 1
    assert RelayServer.objects.count() == 1
