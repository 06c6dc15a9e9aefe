"""Effective delivery paths after redirects and routing rules (relays.resolution)."""

import pytest

from relays.resolution import delivery_paths, domain_matches
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
