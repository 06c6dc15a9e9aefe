import pytest

from relays.models import DeliverThrough, DomainOverride, RoutingRule
from relays.resolution import delivery_paths
from tests.conftest import error, ok
from tests.factories import IpAddressFactory, RelayServerFactory, RoutingRuleFactory, add_override


def target(vmta, portion):
    return {"virtual_mta": {"id": vmta.id}, "portion_of_mail": portion}


def answered(vmta, portion):
    return {"virtual_mta": vmta.reference, "portion_of_mail": portion}


@pytest.fixture
def paths(db):
    return (
        IpAddressFactory(name="ipaddr-1"),
        RelayServerFactory(name="my-relay-1"),
        RoutingRuleFactory(name="rr-0"),
    )


def test_create_with_default_and_overrides_over_every_type(admin, paths):
    ip, relay, other_rule = paths
    payload = {
        "routing_rule": {
            "name": "rr-1",
            "default": {
                "randomization_type": "random",
                "deliver_through": [target(ip, 30.0), target(relay, 70)],
            },
            "domain_overrides": [
                {
                    "domains": ["[*.]example.com", "*.example.org"],
                    "randomization_type": "message_constant",
                    "deliver_through": [target(other_rule, 100.0)],
                }
            ],
        }
    }

    response = admin.post("/routing_rules", payload)

    assert response.status_code == 200, response.json()
    rule = RoutingRule.objects.get(name="rr-1")
    override = DomainOverride.objects.get(rule=rule)
    assert response.json() == ok(
        {
            "routing_rule": {
                "id": rule.id,
                "name": "rr-1",
                "default": {
                    "randomization_type": "random",
                    "deliver_through": [answered(ip, 30.0), answered(relay, 70.0)],
                },
                "domain_overrides": [
                    {
                        "id": override.id,
                        "domains": ["[*.]example.com", "*.example.org"],
                        "randomization_type": "message_constant",
                        "deliver_through": [answered(other_rule, 100.0)],
                    }
                ],
            }
        }
    )


def test_targets_may_be_named_case_insensitively(admin, paths):
    response = admin.post(
        "/routing_rules",
        {
            "routing_rule": {
                "name": "rr-1",
                "default": {
                    "randomization_type": "email_address_constant",
                    "deliver_through": [
                        {"virtual_mta": {"name": "MY-RELAY-1"}, "portion_of_mail": 1}
                    ],
                },
            }
        },
    )

    assert response.json()["data"]["routing_rule"]["default"]["deliver_through"] == [
        answered(paths[1], 1.0)
    ]
    assert response.json()["data"]["routing_rule"]["domain_overrides"] == []


def test_put_of_randomization_type_alone_keeps_the_targets(admin, paths):
    rule = RoutingRuleFactory(targets=[(paths[0], 1)])

    response = admin.put(
        f"/routing_rules/{rule.id}",
        {"routing_rule": {"default": {"randomization_type": "message_constant"}}},
    )

    default = response.json()["data"]["routing_rule"]["default"]
    assert default == {
        "randomization_type": "message_constant",
        "deliver_through": [answered(paths[0], 1.0)],
    }


def test_put_replaces_the_override_list_and_unchanged_overrides_keep_their_ids(admin, paths):
    ip, relay, _ = paths
    rule = RoutingRuleFactory(targets=[(ip, 1)])
    kept = add_override(rule, ["a.example"], [(ip, 1)])
    by_id = add_override(rule, ["b.example"], [(relay, 1)])
    dropped = add_override(rule, ["c.example"], [(relay, 1)])
    new_list = [
        {
            "domains": ["new.example"],
            "randomization_type": "random",
            "deliver_through": [target(relay, 5)],
        },
        {
            "domains": ["a.example"],
            "randomization_type": "random",
            "deliver_through": [target(ip, 1)],
        },
        {
            "id": by_id.id,
            "domains": ["B.example"],
            "randomization_type": "random",
            "deliver_through": [target(ip, 2)],
        },
    ]

    response = admin.put(
        f"/routing_rules/{rule.id}", {"routing_rule": {"domain_overrides": new_list}}
    )

    overrides = response.json()["data"]["routing_rule"]["domain_overrides"]
    assert [o["domains"] for o in overrides] == [["new.example"], ["a.example"], ["B.example"]]
    assert overrides[0]["id"] not in {kept.id, by_id.id, dropped.id}
    assert [o["id"] for o in overrides[1:]] == [kept.id, by_id.id]
    assert overrides[2]["deliver_through"] == [answered(ip, 2.0)]
    assert not DomainOverride.objects.filter(id=dropped.id).exists()
    assert DeliverThrough.objects.filter(rule=rule).count() == 4


def test_what_get_answered_can_be_put_back_unchanged(admin, paths):
    rule = RoutingRuleFactory(targets=[(paths[0], 1)])
    add_override(rule, ["a.example"], [(paths[1], 3)])
    got = admin.get(f"/routing_rules/{rule.id}").json()["data"]

    response = admin.put(f"/routing_rules/{rule.id}", got)

    assert response.json()["data"] == got


def test_a_route_may_name_a_target_twice_and_its_portions_add_up(admin, paths):
    """Not refused (a GreenArrow client's PUT of what it read may carry it): the rows are kept
    as written, and delivery merges them, walking the target once (README, "Routing rules")."""
    ip, relay, _ = paths
    route = [target(relay, 1), target(ip, 2), target(relay, 1)]

    response = admin.post(
        "/routing_rules",
        {
            "routing_rule": {
                "name": "rr-1",
                "default": {"randomization_type": "random", "deliver_through": route},
            }
        },
    )

    assert response.status_code == 200, response.json()
    rule = RoutingRule.objects.get(name="rr-1")
    assert response.json()["data"]["routing_rule"]["default"]["deliver_through"] == [
        answered(relay, 1.0),
        answered(ip, 2.0),
        answered(relay, 1.0),
    ]
    assert DeliverThrough.objects.filter(rule=rule).count() == 3
    assert [(p.virtual_mta.id, p.share) for p in delivery_paths(rule)] == [
        (ip.id, 0.5),
        (relay.id, 0.5),
    ]


def test_an_override_id_of_another_rule_is_refused(admin, paths, unchanged):
    rule = RoutingRuleFactory(targets=[(paths[0], 1)])
    foreign = add_override(
        RoutingRuleFactory(targets=[(paths[0], 1)]), ["x.example"], [(paths[0], 1)]
    )
    override = {
        "id": foreign.id,
        "domains": ["x.example"],
        "randomization_type": "random",
        "deliver_through": [target(paths[0], 1)],
    }

    with unchanged():
        response = admin.put(
            f"/routing_rules/{rule.id}", {"routing_rule": {"domain_overrides": [override]}}
        )

    assert response.json() == error(
        "validation_failed",
        "domain_overrides[0].id refers to no domain override of this routing rule",
    )


def test_an_override_in_a_put_must_be_whole(admin, paths, unchanged):
    rule = RoutingRuleFactory(targets=[(paths[0], 1)])

    with unchanged():
        response = admin.put(
            f"/routing_rules/{rule.id}",
            {"routing_rule": {"domain_overrides": [{"domains": ["a.example"]}]}},
        )

    assert response.json() == error(
        "validation_failed",
        "domain_overrides[0].randomization_type is required",
        "domain_overrides[0].deliver_through is required",
    )


def test_domains_are_unique_case_insensitively_within_the_rule(admin, paths, unchanged):
    overrides = [
        {
            "domains": ["Example.com"],
            "randomization_type": "random",
            "deliver_through": [target(paths[0], 1)],
        },
        {
            "domains": ["other.com", "example.COM"],
            "randomization_type": "random",
            "deliver_through": [target(paths[0], 1)],
        },
    ]
    rule = RoutingRuleFactory(targets=[(paths[0], 1)])

    with unchanged():
        response = admin.put(
            f"/routing_rules/{rule.id}", {"routing_rule": {"domain_overrides": overrides}}
        )

    assert response.json() == error(
        "validation_failed",
        "domain_overrides[1].domains[1] example.COM is already listed in domain_overrides[0]",
    )


def rule_with_override_for(domain, via):
    """A create body for `rr-1` with one domain override for `domain`, all through `via`."""
    route = {"randomization_type": "random", "deliver_through": [target(via, 1)]}
    return {
        "routing_rule": {
            "name": "rr-1",
            "default": route,
            "domain_overrides": [{"domains": [domain], **route}],
        }
    }


DOMAIN = "must be a domain name, optionally prefixed with [*.] (it and its subdomains) or *. (its subdomains only)"


@pytest.mark.parametrize(
    "domain",
    ["example.com", "[*.]example.com", "*.example.com", "localhost", "a-b.c0m", "x" * 63 + ".com"],
)
def test_accepted_domain_forms(admin, paths, domain):
    payload = rule_with_override_for(domain, paths[0])

    response = admin.post("/routing_rules", payload)

    assert response.status_code == 200, response.json()


@pytest.mark.parametrize(
    "domain",
    [
        "",
        "*",
        "[*.]",
        "**.example.com",
        "-bad.com",
        "bad-.com",
        "a..b",
        "ex ample.com",
        "x" * 64 + ".com",
        "exämple.com",
        "[*]example.com",
    ],
)
def test_refused_domain_forms(admin, paths, unchanged, domain):
    payload = rule_with_override_for(domain, paths[0])

    with unchanged():
        response = admin.post("/routing_rules", payload)

    assert response.json() == error("validation_failed", f"domain_overrides[0].domains[0] {DOMAIN}")


@pytest.mark.parametrize(
    ("default", "message"),
    [
        (
            {
                "randomization_type": "round_robin",
                "deliver_through": [{"virtual_mta": {"id": 1}, "portion_of_mail": 1}],
            },
            "default.randomization_type must be one of random, message_constant, email_address_constant",
        ),
        (
            {"randomization_type": "random", "deliver_through": []},
            "default.deliver_through must not be empty",
        ),
        (
            {"randomization_type": "random", "deliver_through": {}},
            "default.deliver_through must be a list",
        ),
        ({"randomization_type": "random"}, "default.deliver_through is required"),
    ],
)
def test_refused_default_routes(admin, paths, unchanged, default, message):
    with unchanged():
        response = admin.post(
            "/routing_rules", {"routing_rule": {"name": "rr-1", "default": default}}
        )

    assert response.json() == error("validation_failed", message)


PORTION = "must be a number greater than 0 and at most 1000000"


@pytest.mark.parametrize("portion", [0.001, 1, 33.3, 1000000])
def test_accepted_portions(admin, paths, portion):
    payload = {
        "routing_rule": {
            "name": "rr-1",
            "default": {
                "randomization_type": "random",
                "deliver_through": [target(paths[0], portion)],
            },
        }
    }

    response = admin.post("/routing_rules", payload)

    assert (
        response.json()["data"]["routing_rule"]["default"]["deliver_through"][0]["portion_of_mail"]
        == portion
    )


@pytest.mark.parametrize("portion", [0, -1, 1000000.5, "50", True, None])
def test_refused_portions(admin, paths, unchanged, portion):
    payload = {
        "routing_rule": {
            "name": "rr-1",
            "default": {
                "randomization_type": "random",
                "deliver_through": [target(paths[0], 1), target(paths[1], portion)],
            },
        }
    }

    with unchanged():
        response = admin.post("/routing_rules", payload)

    message = "must not be null" if portion is None else PORTION
    assert response.json() == error(
        "validation_failed", f"default.deliver_through[1].portion_of_mail {message}"
    )


def test_unknown_targets_are_each_reported(admin, unchanged):
    payload = {
        "routing_rule": {
            "name": "rr-1",
            "default": {
                "randomization_type": "random",
                "deliver_through": [
                    {"virtual_mta": {"id": 4040}, "portion_of_mail": 1},
                    {"virtual_mta": {"name": "ghost"}, "portion_of_mail": 1},
                ],
            },
        }
    }

    with unchanged():
        response = admin.post("/routing_rules", payload)

    assert response.json() == error(
        "validation_failed",
        "default.deliver_through[0].virtual_mta refers to no VirtualMTA with id 4040",
        "default.deliver_through[1].virtual_mta refers to no VirtualMTA named 'ghost'",
    )


def test_unknown_attributes_inside_lists_are_refused(admin, paths):
    payload = {
        "routing_rule": {
            "name": "rr-1",
            "default": {
                "randomization_type": "random",
                "deliver_through": [{**target(paths[0], 1), "weight": 2}],
            },
        }
    }

    response = admin.post("/routing_rules", payload)

    assert response.json() == error(
        "invalid_request", "unknown attribute routing_rule.default.deliver_through[0].weight"
    )


def test_delete_removes_the_rule_and_everything_it_owns(admin, paths):
    rule = RoutingRuleFactory(targets=[(paths[0], 1)])
    add_override(rule, ["a.example"], [(paths[1], 1)])

    response = admin.delete(f"/routing_rules/{rule.id}")

    assert response.json() == ok({})
    assert not DomainOverride.objects.exists()
    assert not DeliverThrough.objects.exists()
