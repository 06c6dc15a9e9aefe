"""Limits where GreenArrow is silent, so that every request does bounded work; each refused at
the edge with a clear message, and nothing written."""

import pytest

from relays import validators as v
from relays.models import DefaultVirtualMta, RoutingRule
from tests.conftest import error
from tests.factories import IpAddressFactory, RelayServerFactory, RoutingRuleFactory


def route(targets, portion=1):
    return {
        "randomization_type": "random",
        "deliver_through": [
            {"virtual_mta": {"id": t.id}, "portion_of_mail": portion} for t in targets
        ],
    }


def override(domains, targets):
    return {"domains": domains, **route(targets)}


def create_rule(admin, **routing_rule):
    return admin.post("/routing_rules", {"routing_rule": {"name": "rr", **routing_rule}})


@pytest.fixture
def relay(db):
    return RelayServerFactory(name="target")


# --- routing rules ---


def test_a_route_takes_up_to_the_target_limit(admin, relay):
    response = create_rule(admin, default=route([relay] * v.MAX_TARGETS_PER_ROUTE))

    assert response.status_code == 200
    assert len(response.json()["data"]["routing_rule"]["default"]["deliver_through"]) == 100


def test_a_route_over_the_target_limit_is_refused(admin, relay, unchanged):
    with unchanged():
        response = create_rule(admin, default=route([relay] * (v.MAX_TARGETS_PER_ROUTE + 1)))

    assert response.json() == error(
        "validation_failed", "default.deliver_through must have at most 100 items"
    )


def test_an_override_over_the_target_limit_is_refused(admin, relay, unchanged):
    with unchanged():
        response = create_rule(
            admin,
            default=route([relay]),
            domain_overrides=[override(["a.example"], [relay] * 101)],
        )

    assert response.json() == error(
        "validation_failed", "domain_overrides[0].deliver_through must have at most 100 items"
    )


def test_a_rule_takes_up_to_the_override_limit_and_puts_back_unchanged(admin, relay):
    overrides = [override([f"d{n}.example"], [relay]) for n in range(v.MAX_OVERRIDES_PER_RULE)]

    created = create_rule(admin, default=route([relay]), domain_overrides=overrides).json()["data"]
    rule = created["routing_rule"]
    again = admin.put(f"/routing_rules/{rule['id']}", created).json()["data"]

    assert len(rule["domain_overrides"]) == 1000
    assert again == created  # every override kept its id


def test_a_rule_over_the_override_limit_is_refused(admin, relay, unchanged):
    overrides = [override([f"d{n}.example"], [relay]) for n in range(v.MAX_OVERRIDES_PER_RULE + 1)]

    with unchanged():
        response = create_rule(admin, default=route([relay]), domain_overrides=overrides)

    assert response.json() == error(
        "validation_failed", "domain_overrides must have at most 1000 items"
    )


def test_an_override_takes_up_to_the_domain_limit(admin, relay):
    domains = [f"d{n}.example" for n in range(v.MAX_DOMAINS_PER_OVERRIDE)]

    response = create_rule(
        admin, default=route([relay]), domain_overrides=[override(domains, [relay])]
    )

    assert len(response.json()["data"]["routing_rule"]["domain_overrides"][0]["domains"]) == 1000


def test_an_override_over_the_domain_limit_is_refused(admin, relay, unchanged):
    domains = [f"d{n}.example" for n in range(v.MAX_DOMAINS_PER_OVERRIDE + 1)]

    with unchanged():
        response = create_rule(
            admin, default=route([relay]), domain_overrides=[override(domains, [relay])]
        )

    assert response.json() == error(
        "validation_failed", "domain_overrides[0].domains must have at most 1000 items"
    )


# --- delivery paths: at most MAX_DELIVERY_HOPS hand-offs ---


def chain(length, prefix="c"):
    """relays c0 -> c1 -> ... -> c<length>: `length` hand-offs; returns [c0, ..., c<length>]."""
    nodes = [RelayServerFactory(name=f"{prefix}{length}")]
    for n in range(length - 1, -1, -1):
        nodes.insert(0, RelayServerFactory(name=f"{prefix}{n}", redirect=nodes[0]))
    return nodes


def redirect(admin, relay, target):
    return admin.put(
        f"/relay_servers/{relay.id}", {"relay_server": {"redirect": {"id": target.id}}}
    )


TOO_LONG = (
    "redirect would make a delivery path of more than 16 hand-offs "
    "(redirects and routing-rule targets)"
)


def test_a_path_of_the_hop_limit_is_accepted(admin):
    nodes = chain(v.MAX_DELIVERY_HOPS - 1)
    head = RelayServerFactory(name="head")

    assert redirect(admin, head, nodes[0]).status_code == 200


def test_a_redirect_to_the_head_of_a_full_chain_is_refused(admin, unchanged):
    nodes = chain(v.MAX_DELIVERY_HOPS)
    head = RelayServerFactory(name="head")

    with unchanged():
        response = redirect(admin, head, nodes[0])

    assert response.json() == error("validation_failed", TOO_LONG)


def test_extending_a_full_chain_at_its_tail_is_refused(admin, unchanged):
    nodes = chain(v.MAX_DELIVERY_HOPS)
    tail = RelayServerFactory(name="tail")

    with unchanged():
        response = redirect(admin, nodes[-1], tail)

    assert response.json() == error("validation_failed", TOO_LONG)


def test_joining_two_chains_counts_both_halves(admin, unchanged):
    upper, lower = chain(8, "u"), chain(8, "l")  # 8 + 1 + 8 = 17 hand-offs

    with unchanged():
        response = redirect(admin, upper[-1], lower[0])

    assert response.json() == error("validation_failed", TOO_LONG)


def test_routing_rule_targets_count_as_hand_offs(admin, unchanged):
    nodes = chain(v.MAX_DELIVERY_HOPS)
    rule = RoutingRuleFactory(targets=[(IpAddressFactory(), 1)])

    with unchanged():
        response = admin.put(
            f"/routing_rules/{rule.id}", {"routing_rule": {"default": route([nodes[0]])}}
        )

    assert response.json() == error(
        "validation_failed",
        "default.deliver_through would make a delivery path of more than 16 hand-offs "
        "(redirects and routing-rule targets)",
    )
    assert (
        RoutingRule.objects.get(id=rule.id).default_deliver_through[0].virtual_mta_id != nodes[0].id
    )


# --- referrers ---


def test_a_refused_delete_names_the_first_referrers_and_counts_the_rest(admin, unchanged):
    target = IpAddressFactory(name="ip")
    for n in range(v.MAX_REFERRERS_NAMED + 5):
        RelayServerFactory(name=f"r-{n:02}", redirect=target)

    with unchanged():
        response = admin.delete(f"/ip_addresses/{target.id}")

    messages = response.json()["error_messages"]
    assert response.status_code == 409
    assert len(messages) == 21
    assert (
        messages[0]
        == f"ip_address {target.id} (ip) is used by relay_server {target.id + 1} (r-00) as its redirect"
    )
    assert messages[19].endswith("(r-19) as its redirect")
    assert messages[20] == "and 5 more"


def test_used_by_pages_across_every_kind_of_reference(admin):
    target = IpAddressFactory(name="ip")
    for n in range(98):
        RelayServerFactory(name=f"r-{n:02}", redirect=target)
    rules = [RoutingRuleFactory(name=f"rr-{n}", targets=[(target, 1)]) for n in range(3)]
    DefaultVirtualMta.objects.create(virtual_mta=target)

    first = admin.get(f"/virtual_mtas/{target.id}/used_by").json()["data"]
    token = first["pagination"]["next_page_token"]
    second = admin.get(f"/virtual_mtas/{target.id}/used_by", page_token=token).json()["data"]
    by_page = admin.get(f"/virtual_mtas/{target.id}/used_by", page="1").json()["data"]

    assert first["pagination"]["num_records"] == 102
    assert [r["name"] for r in first["used_by"][96:]] == ["r-96", "r-97", "rr-0", "rr-1"]
    assert [r["name"] for r in second["used_by"]] == ["rr-2", None]
    assert second["used_by"][1]["type"] == "default_virtual_mta"
    assert by_page["used_by"] == second["used_by"]
    assert [r["id"] for r in second["used_by"]][:1] == [rules[2].id]


# --- the database ---


@pytest.mark.postgresql
def test_no_statement_runs_longer_than_the_statement_timeout(db):
    from django.db import OperationalError, connection, transaction

    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone() == ("5s",)
        with pytest.raises(OperationalError, match="statement timeout"), transaction.atomic():
            cursor.execute("SET LOCAL statement_timeout = 50")
            cursor.execute("SELECT pg_sleep(1)")
