"""List totals come from per-type counts that database triggers keep, whatever wrote the rows."""

from django.db import connection, transaction
from django.utils import timezone

from relays.models import RecordCount, RelayServer
from tests.factories import IpAddressFactory, RelayServerFactory, RoutingRuleFactory


def counts():
    return {r.type: r.count for r in RecordCount.objects.all()}


def test_counts_follow_creates_and_deletes_of_each_type(db):
    relays = [RelayServerFactory() for _ in range(3)]
    IpAddressFactory()
    RoutingRuleFactory(targets=[(relays[0], 1)])

    relays[2].delete()

    assert counts() == {"relay_server": 2, "ip_address": 1, "routing_rule": 1}
    assert RecordCount.of("relay_server") == (2, 4)  # 3 inserts and 1 delete moved it
    assert RecordCount.of()[0] == 4


def test_rows_written_in_plain_sql_are_counted(db):
    relay = RelayServerFactory()
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM relays_relayserver WHERE virtualmta_ptr_id = %s", [relay.pk])
        cursor.execute("DELETE FROM relays_virtualmta WHERE id = %s", [relay.pk])

    assert counts() == {"relay_server": 0}


def test_one_statement_of_many_rows_is_counted_whole(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO relays_virtualmta (type, name, created_at, updated_at) VALUES "
            "('routing_rule', 'a', %s, %s), ('routing_rule', 'b', %s, %s), "
            "('ip_address', 'c', %s, %s)",
            [timezone.now()] * 6,
        )
        assert counts() == {"routing_rule": 2, "ip_address": 1}
        cursor.execute("DELETE FROM relays_virtualmta WHERE name IN ('a', 'b', 'c')")

    assert counts() == {"routing_rule": 0, "ip_address": 0}


def test_a_rolled_back_create_is_not_counted(db):
    RelayServerFactory()
    try:
        with transaction.atomic():
            RelayServerFactory()
            raise RuntimeError
    except RuntimeError:
        pass

    assert counts() == {"relay_server": 1}


def test_list_totals_agree_with_the_rows(admin):
    for n in range(5):
        RelayServerFactory(name=f"r-{n}")
    IpAddressFactory()
    RelayServer.objects.filter(name="r-1").delete()

    relays = admin.get("/relay_servers").json()["data"]["pagination"]
    everything = admin.get("/virtual_mtas").json()["data"]["pagination"]

    assert relays["num_records"] == RelayServer.objects.count() == 4
    assert everything["num_records"] == 5
