"""No delivery loop may form through redirects and routing-rule targets together."""

from tests.conftest import error
from tests.factories import IpAddressFactory, RelayServerFactory, RoutingRuleFactory, add_override


def deliver_through(*vmtas):
    return [{"virtual_mta": {"id": v.id}, "portion_of_mail": 1} for v in vmtas]


def test_a_redirect_to_a_rule_that_delivers_back_is_refused(admin, unchanged):
    relay = RelayServerFactory(name="A")
    rule = RoutingRuleFactory(name="R", targets=[(relay, 1)])

    with unchanged():
        response = admin.put(
            f"/relay_servers/{relay.id}", {"relay_server": {"redirect": {"id": rule.id}}}
        )

    assert response.json() == error(
        "validation_failed", "redirect would create a delivery loop: A -> R -> A"
    )


def test_a_rule_target_that_redirects_back_is_refused(admin, unchanged):
    other = IpAddressFactory(name="other")
    rule = RoutingRuleFactory(name="R", targets=[(other, 1)])
    ip = IpAddressFactory(name="I", redirect=rule)

    with unchanged():
        response = admin.put(
            f"/routing_rules/{rule.id}",
            {"routing_rule": {"default": {"deliver_through": deliver_through(other, ip)}}},
        )

    assert response.json() == error(
        "validation_failed", "default.deliver_through would create a delivery loop: R -> I -> R"
    )


def test_a_loop_through_an_override_is_refused_on_that_override(admin, unchanged):
    safe = IpAddressFactory(name="safe")
    outer = RoutingRuleFactory(name="outer", targets=[(safe, 1)])
    inner = RoutingRuleFactory(name="inner", targets=[(safe, 1)])
    add_override(inner, ["x.example"], [(outer, 1)])
    override = {
        "domains": ["y.example"],
        "randomization_type": "random",
        "deliver_through": deliver_through(inner),
    }

    with unchanged():
        response = admin.put(
            f"/routing_rules/{outer.id}", {"routing_rule": {"domain_overrides": [override]}}
        )

    assert response.json() == error(
        "validation_failed",
        "domain_overrides[0].deliver_through would create a delivery loop: outer -> inner -> outer",
    )


def test_a_rule_may_not_deliver_through_itself(admin, unchanged):
    rule = RoutingRuleFactory(name="R", targets=[(IpAddressFactory(), 1)])

    with unchanged():
        response = admin.put(
            f"/routing_rules/{rule.id}",
            {"routing_rule": {"default": {"deliver_through": deliver_through(rule)}}},
        )

    assert response.json() == error(
        "validation_failed", "default.deliver_through must not point at the VirtualMTA itself"
    )


def test_diamonds_are_not_loops(admin):
    a, b = IpAddressFactory(name="a"), IpAddressFactory(name="b")
    left = RoutingRuleFactory(name="left", targets=[(a, 1)])
    right = RoutingRuleFactory(name="right", targets=[(a, 1), (b, 1)])

    response = admin.put(
        f"/routing_rules/{left.id}",
        {"routing_rule": {"default": {"deliver_through": deliver_through(a, right)}}},
    )

    assert response.status_code == 200
