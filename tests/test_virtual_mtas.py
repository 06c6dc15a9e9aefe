"""The VirtualMTAs API: every type in one list, what refers to one, and the default."""

import pytest

from relays.models import DefaultVirtualMta, VirtualMta
from tests.conftest import error, ok
from tests.factories import IpAddressFactory, RelayServerFactory, RoutingRuleFactory, add_override


def test_the_list_mixes_every_type_in_id_order(admin):
    ip1, ip2 = IpAddressFactory(name="ipaddr-1"), IpAddressFactory(name="ipaddr-2")
    relay = RelayServerFactory(name="my-relay-1")
    rule = RoutingRuleFactory(name="rr-1", targets=[(relay, 1)])

    response = admin.get("/virtual_mtas")

    assert response.json() == ok(
        {
            "virtual_mtas": [
                {"type": "ip_address", "id": ip1.id, "name": "ipaddr-1"},
                {"type": "ip_address", "id": ip2.id, "name": "ipaddr-2"},
                {"type": "relay_server", "id": relay.id, "name": "my-relay-1"},
                {"type": "routing_rule", "id": rule.id, "name": "rr-1"},
            ],
            "pagination": {
                "page": 0,
                "per_page": 100,
                "num_pages": 1,
                "num_records": 4,
                "next_page_token": None,
            },
        }
    )


def test_the_list_pages_with_tokens(admin):
    for n in range(120):
        (IpAddressFactory if n % 2 else RelayServerFactory)(name=f"v-{n}")
    first = admin.get("/virtual_mtas").json()["data"]

    second = admin.get("/virtual_mtas", page_token=first["pagination"]["next_page_token"]).json()[
        "data"
    ]

    names = [v["name"] for v in first["virtual_mtas"] + second["virtual_mtas"]]
    assert names == [f"v-{n}" for n in range(120)]
    assert second["pagination"] == {
        "page": 1,
        "per_page": 100,
        "num_pages": 2,
        "num_records": 120,
        "next_page_token": None,
    }


@pytest.fixture
def referenced(db):
    """One target referred to in every way a VirtualMTA can be referred to."""
    target = RelayServerFactory(name="target")
    other = IpAddressFactory(name="other")
    ip = IpAddressFactory(name="ip-redirecting", redirect=target)
    relay = RelayServerFactory(name="relay-redirecting", redirect=target)
    rule = RoutingRuleFactory(name="rule-routing", targets=[(other, 1), (target, 2)])
    add_override(rule, ["a.example"], [(other, 1)])
    add_override(rule, ["b.example"], [(target, 1)])
    DefaultVirtualMta.objects.create(virtual_mta=target)
    return target, ip, relay, rule


def test_used_by_lists_every_reference_kind(admin, referenced):
    target, ip, relay, rule = referenced

    response = admin.get(f"/virtual_mtas/{target.id}/used_by")

    assert response.json() == ok(
        {
            "used_by": [
                {
                    "type": "ip_address",
                    "id": ip.id,
                    "name": "ip-redirecting",
                    "attribute": "redirect",
                },
                {
                    "type": "relay_server",
                    "id": relay.id,
                    "name": "relay-redirecting",
                    "attribute": "redirect",
                },
                {
                    "type": "routing_rule",
                    "id": rule.id,
                    "name": "rule-routing",
                    "attribute": "default.deliver_through[1].virtual_mta",
                },
                {
                    "type": "routing_rule",
                    "id": rule.id,
                    "name": "rule-routing",
                    "attribute": "domain_overrides[1].deliver_through[0].virtual_mta",
                },
                {
                    "type": "default_virtual_mta",
                    "id": None,
                    "name": None,
                    "attribute": "virtual_mta",
                },
            ],
            "pagination": {
                "page": 0,
                "per_page": 100,
                "num_pages": 1,
                "num_records": 5,
                "next_page_token": None,
            },
        }
    )


def test_the_refused_delete_names_exactly_what_used_by_lists(admin, referenced, unchanged):
    target = referenced[0]
    used_by = admin.get(f"/virtual_mtas/{target.id}/used_by").json()["data"]["used_by"]

    with unchanged():
        response = admin.delete(f"/relay_servers/{target.id}")

    assert response.status_code == 409
    messages = response.json()["error_messages"]
    assert len(messages) == len(used_by)
    for referrer, message in zip(used_by, messages, strict=True):
        if referrer["type"] == "default_virtual_mta":
            assert message == f"relay_server {target.id} (target) is the default VirtualMTA"
        else:
            assert message == (
                f"relay_server {target.id} (target) is used by {referrer['type']} {referrer['id']} "
                f"({referrer['name']}) as its {referrer['attribute']}"
            )


@pytest.mark.parametrize(
    "kind", ["ip_redirect", "relay_redirect", "default_route", "override_route", "default_vmta"]
)
def test_each_reference_kind_alone_blocks_delete_and_shows_in_used_by(admin, kind):
    target = IpAddressFactory(name="target")
    helper = RelayServerFactory(name="helper")
    if kind == "ip_redirect":
        IpAddressFactory(redirect=target)
    elif kind == "relay_redirect":
        RelayServerFactory(redirect=target)
    elif kind == "default_route":
        RoutingRuleFactory(targets=[(target, 1)])
    elif kind == "override_route":
        add_override(RoutingRuleFactory(targets=[(helper, 1)]), ["x.example"], [(target, 1)])
    else:
        DefaultVirtualMta.objects.create(virtual_mta=target)

    used_by = admin.get(f"/virtual_mtas/{target.id}/used_by").json()["data"]["used_by"]
    refused = admin.delete(f"/ip_addresses/{target.id}")

    assert len(used_by) == 1
    assert refused.status_code == 409
    assert VirtualMta.objects.filter(id=target.id).exists()


def test_used_by_of_an_unused_virtual_mta_is_empty_and_delete_works(admin):
    rule = RoutingRuleFactory(targets=[(IpAddressFactory(), 1)])

    assert admin.get(f"/virtual_mtas/{rule.id}/used_by").json()["data"]["used_by"] == []
    assert admin.delete(f"/routing_rules/{rule.id}").status_code == 200


def test_used_by_of_a_missing_virtual_mta_is_not_found(admin):
    assert admin.get("/virtual_mtas/999/used_by").json() == error(
        "not_found", "no VirtualMTA with id 999"
    )


def test_used_by_pages_past_one_hundred_referrers(admin):
    target = IpAddressFactory()
    for n in range(130):
        RelayServerFactory(name=f"r-{n}", redirect=target)

    first = admin.get(f"/virtual_mtas/{target.id}/used_by").json()["data"]
    second = admin.get(
        f"/virtual_mtas/{target.id}/used_by", page_token=first["pagination"]["next_page_token"]
    ).json()["data"]

    assert len(first["used_by"]) == 100
    assert [r["name"] for r in second["used_by"]] == [f"r-{n}" for n in range(100, 130)]
    assert second["pagination"]["next_page_token"] is None


# --- the default VirtualMTA ---


def test_there_is_no_default_until_one_is_set(admin):
    assert admin.get("/virtual_mtas/default").json() == ok({"virtual_mta": None})


def test_set_the_default_by_name_then_by_id_then_clear_it(admin):
    ip = IpAddressFactory(name="ipaddr-1")
    rule = RoutingRuleFactory(name="rr-1", targets=[(ip, 1)])

    by_name = admin.put("/virtual_mtas/default", {"virtual_mta": {"name": "IPADDR-1"}})
    by_id = admin.put("/virtual_mtas/default", {"virtual_mta": {"id": rule.id, "name": "ignored"}})
    got = admin.get("/virtual_mtas/default")
    cleared = admin.put("/virtual_mtas/default", {"virtual_mta": None})

    assert by_name.json() == ok(
        {"virtual_mta": {"type": "ip_address", "id": ip.id, "name": "ipaddr-1"}}
    )
    assert by_id.json() == ok(
        {"virtual_mta": {"type": "routing_rule", "id": rule.id, "name": "rr-1"}}
    )
    assert got.json() == by_id.json()
    assert cleared.json() == ok({"virtual_mta": None})
    assert DefaultVirtualMta.objects.get().virtual_mta is None


@pytest.mark.parametrize(
    ("body", "code", "message"),
    [
        (
            {"virtual_mta": {"id": 404}},
            "validation_failed",
            "virtual_mta refers to no VirtualMTA with id 404",
        ),
        (
            {"virtual_mta": {"name": "nope"}},
            "validation_failed",
            "virtual_mta refers to no VirtualMTA named 'nope'",
        ),
        (
            {"virtual_mta": "ipaddr-1"},
            "validation_failed",
            "virtual_mta must be a hash with an id or a name",
        ),
        (
            {"virtual_mta": {"id": "1"}},
            "validation_failed",
            "virtual_mta id must be a positive integer",
        ),
        ({}, "invalid_request", "the request body must have the key virtual_mta"),
        ({"virtual_mta": None, "extra": 1}, "invalid_request", "unknown attribute extra"),
        (
            {"virtual_mta": {"id": 1, "colour": "red"}},
            "invalid_request",
            "unknown attribute virtual_mta.colour",
        ),
    ],
)
def test_bad_default_requests_change_nothing(admin, unchanged, body, code, message):
    with unchanged():
        response = admin.put("/virtual_mtas/default", body)

    assert response.status_code == 400
    assert response.json() == error(code, message)


def test_the_default_needs_its_model_permission(persona):
    viewer = persona("viewer", perms=["view_defaultvirtualmta"])

    assert viewer.get("/virtual_mtas/default").status_code == 200
    assert viewer.put("/virtual_mtas/default", {"virtual_mta": None}).status_code == 403
