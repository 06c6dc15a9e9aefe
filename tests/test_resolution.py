"""Effective delivery paths after redirects and routing rules (relays.resolution)."""

import pytest

from relays.models import VirtualMta
from relays.resolution import Store, delivery_paths, domain_matches
from tests.factories import IpAddressFactory, RelayServerFactory, RoutingRuleFactory, add_override


def summary(paths):
    return [(p.virtual_mta.name, round(p.share, 6), p.paused) for p in paths]


def test_a_plain_path_delivers_itself(db):
    relay = RelayServerFactory(name="r")

    assert summary(delivery_paths(relay)) == [("r", 1.0, False)]


def test_redirects_are_followed_to_the_end(db):
    final = RelayServerFactory(name="final")
    middle = IpAddressFactory(name="middle", redirect=final)
    first = RelayServerFactory(name="first", redirect=middle)

    assert summary(delivery_paths(first)) == [("final", 1.0, False)]


def test_a_pause_beats_a_redirect_on_an_ip_address(db):
    ip = IpAddressFactory(
        name="paused", delivery_paused=True, redirect=RelayServerFactory(name="elsewhere")
    )

    assert summary(delivery_paths(ip)) == [("paused", 1.0, True)]


def test_routing_rules_split_by_portion_and_merge_shared_paths(db):
    a, b = IpAddressFactory(name="a"), IpAddressFactory(name="b")
    inner = RoutingRuleFactory(name="inner", targets=[(a, 1), (b, 1)])
    outer = RoutingRuleFactory(name="outer", targets=[(inner, 30.0), (a, 70.0)])

    assert summary(delivery_paths(outer)) == [("a", 0.85, False), ("b", 0.15, False)]


def test_a_domain_override_applies_to_its_domains_only(db):
    a, b = IpAddressFactory(name="a"), IpAddressFactory(name="b")
    rule = RoutingRuleFactory(targets=[(a, 1)])
    add_override(rule, ["[*.]example.com"], [(b, 1)])

    assert summary(delivery_paths(rule, "mail.example.com")) == [("b", 1.0, False)]
    assert summary(delivery_paths(rule, "example.org")) == [("a", 1.0, False)]
    assert summary(delivery_paths(rule)) == [("a", 1.0, False)]


def test_a_target_named_twice_in_a_route_receives_its_portions_added_up(db):
    a, b = IpAddressFactory(name="a"), IpAddressFactory(name="b")
    rule = RoutingRuleFactory(targets=[(a, 1), (b, 4), (a, 3)])

    assert summary(delivery_paths(rule)) == [("a", 0.5, False), ("b", 0.5, False)]


def test_walks_sharing_a_store_keep_each_domain_s_own_route_below_rules_without_overrides(db):
    """Paths are remembered per node, and per domain where a domain override below decides."""
    a, b = IpAddressFactory(name="a"), IpAddressFactory(name="b")
    inner = RoutingRuleFactory(name="inner", targets=[(a, 1)])
    add_override(inner, ["example.com"], [(b, 1)])
    plain = RoutingRuleFactory(name="plain", targets=[(a, 1)])
    outer = RoutingRuleFactory(name="outer", targets=[(inner, 1), (plain, 1)])
    store = Store()

    assert summary(delivery_paths(outer, "example.com", store)) == [
        ("a", 0.5, False),
        ("b", 0.5, False),
    ]
    assert summary(delivery_paths(outer, "example.org", store)) == [("a", 1.0, False)]
    assert summary(delivery_paths(outer, None, store)) == [("a", 1.0, False)]
    assert summary(delivery_paths(inner, "example.com", store)) == [("b", 1.0, False)]


def test_a_loop_written_past_the_services_is_a_value_error_not_an_endless_walk(db):
    """The write services refuse loops; a loop in the database all the same (older data, SQL)
    stops the walk, also when a Store already holds the paths of part of the graph."""
    ip = IpAddressFactory(name="ip")
    relay = RelayServerFactory(name="relay")
    rule = RoutingRuleFactory(name="rule", targets=[(ip, 1), (relay, 1)])
    VirtualMta.objects.filter(pk=relay.pk).update(redirect=rule)
    store = Store()
    assert summary(delivery_paths(ip, store=store)) == [("ip", 1.0, False)]

    with pytest.raises(ValueError, match="delivery loop through rule"):
        delivery_paths(rule, store=store)
    with pytest.raises(ValueError, match="delivery loop through relay"):
        delivery_paths(relay, store=store)


def test_a_rule_whose_route_is_empty_delivers_nowhere(db):
    """Older data: the services refuse an empty route."""
    assert delivery_paths(RoutingRuleFactory(targets=[])) == []


@pytest.mark.parametrize(
    ("pattern", "domain", "matches"),
    [
        ("example.com", "example.com", True),
        ("example.com", "a.example.com", False),
        ("[*.]example.com", "example.com", True),
        ("[*.]example.com", "a.b.EXAMPLE.com", True),
        ("[*.]example.com", "badexample.com", False),
        ("*.example.com", "example.com", False),
        ("*.example.com", "a.example.com", True),
    ],
)
def test_domain_patterns(pattern, domain, matches):
    assert domain_matches(pattern, domain) is matches
