"""The hot read endpoints run a fixed number of SQL queries, however much data there is."""

import pytest

from tests.factories import RelayServerFactory


@pytest.fixture
def admin(admin):
    """The superuser in a script's steady state: logged in once, so the password check is
    remembered (a first login also reads the address's recent failures: one more query, pinned
    in tests/test_brute_force.py)."""
    assert admin.get("/relay_servers").status_code == 200
    return admin


def test_get_one_relay_server_is_two_queries(admin, django_assert_num_queries):
    relay = RelayServerFactory(redirect=RelayServerFactory())

    # 1: the user (HTTP Basic); 2: the relay server joined with its base row and redirect target
    with django_assert_num_queries(2):
        response = admin.get(f"/relay_servers/{relay.id}")

    assert response.status_code == 200


def test_a_list_page_is_three_queries_at_any_depth(admin, django_assert_num_queries):
    for n in range(150):
        RelayServerFactory(name=f"r-{n}")
    token = admin.get("/relay_servers").json()["data"]["pagination"]["next_page_token"]

    # 1: the user; 2: the count; 3: the page
    with django_assert_num_queries(3):
        first = admin.get("/relay_servers")
    with django_assert_num_queries(3):
        second = admin.get("/relay_servers", page_token=token)

    assert len(first.json()["data"]["relay_servers"]) == 100
    assert len(second.json()["data"]["relay_servers"]) == 50


def test_get_one_routing_rule_is_a_fixed_number_of_queries(admin, django_assert_num_queries):
    from tests.factories import IpAddressFactory, RoutingRuleFactory, add_override

    targets = [IpAddressFactory(name=f"ip-{n}") for n in range(6)]
    rule = RoutingRuleFactory(targets=[(t, 1) for t in targets])
    for n in range(4):
        add_override(rule, [f"d{n}.example", f"e{n}.example"], [(t, 1) for t in targets[:3]])

    # user; rule; its targets; its overrides; their domains; their targets
    with django_assert_num_queries(6):
        response = admin.get(f"/routing_rules/{rule.id}")

    assert len(response.json()["data"]["routing_rule"]["domain_overrides"]) == 4


def test_the_virtual_mtas_list_is_three_queries(admin, django_assert_num_queries):
    for n in range(30):
        RelayServerFactory(name=f"v-{n}")

    with django_assert_num_queries(3):
        admin.get("/virtual_mtas")


def test_mail_manager_reads_are_a_fixed_number_of_queries(db, django_assert_num_queries):
    from relays.mailmanager.relays import get_relay, list_relays

    relays = [RelayServerFactory(name=f"m-{n}") for n in range(30)]

    # the page: its keys on the key index, then those rows (one statement); no query per row
    with django_assert_num_queries(1):
        page = list_relays({"PageSize": 25}, None)
    with django_assert_num_queries(1):
        relay = get_relay({"RelayId": relays[0].relay_id}, None)

    assert len(page["Relays"]) == 25
    assert relay["RelayName"] == "m-0"
