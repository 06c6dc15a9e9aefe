"""Delivery paths cost what the delivery graph's size costs, never its number of paths
(relays.resolution): the path bomb of issue 18, four routing rules of 100 targets each, one
under the other, is 10^8 paths; walked once per node, it is a few hundred steps for
`delivery_paths`, the top rule's admin page and the Postfix render alike.

The work is pinned without a clock: by the queries (django_assert_max_num_queries) and by the
routes chosen (`route_for`, one per routing rule walked), which a walk of every path would
call 1 + 100 + 10^4 + 10^6 times; the budget stops such a walk at once instead of letting it
run for minutes. Timings belong in the benchmarks.
"""

import pytest

from relays import resolution, services
from relays.models import DefaultVirtualMta, RoutingRule
from relays.postfix.render import render
from relays.resolution import DeliveryPath, Store, delivery_paths
from tests.factories import IpAddressFactory, RoutingRuleFactory, add_override

TOLERANCE = 1e-9


def create_rule(name, targets):
    """A routing rule through the write service (as the API writes it): its default route
    names each of `targets` with portion 1, repeats included."""
    return services.create_virtual_mta(
        RoutingRule,
        {
            "name": name,
            "default_randomization_type": "random",
            "default_deliver_through": [
                {"virtual_mta": {"id": t.id, "name": None}, "portion_of_mail": 1} for t in targets
            ],
        },
    )


@pytest.fixture
def bomb(db):
    """rule1 -> 100 x rule2 -> 100 x rule3 -> 100 x rule4 -> 100 x ip: 10^8 paths, all to `ip`,
    made through the write service (which takes a route naming a target more than once); the
    default VirtualMTA is rule1. Returns (rule1, ip)."""
    ip = node = IpAddressFactory(name="ip")
    for level in (4, 3, 2, 1):
        node = create_rule(f"rule{level}", [node] * 100)
    DefaultVirtualMta.objects.create(virtual_mta=node)
    return node, ip


@pytest.fixture
def route_budget(monkeypatch):
    """route_budget(n): from now on, more than `n` routes chosen (`route_for`) fails the test at
    once. Returns a callable answering how many were chosen."""
    chosen = []

    def arm(limit):
        real = resolution.route_for

        def counted(rule, domain, store=None):
            chosen.append((rule.pk, domain))
            assert len(chosen) <= limit, f"more than {limit} routes chosen: a walk of every path"
            return real(rule, domain, store)

        monkeypatch.setattr(resolution, "route_for", counted)
        return lambda: len(chosen)

    return arm


def test_the_path_bomb_is_walked_once_per_node(bomb, route_budget, django_assert_max_num_queries):
    top, ip = bomb
    chosen = route_budget(4)

    # Each node read once: the record as its type (5), and per rule its targets, their
    # VirtualMTAs and its overrides (3 x 4).
    with django_assert_max_num_queries(20):
        paths = delivery_paths(top)

    assert paths == [DeliveryPath(ip, 1.0, False)]
    assert chosen() == 4


def test_the_top_rule_s_admin_page_shows_the_bomb_with_bounded_work(
    bomb, browser, route_budget, django_assert_max_num_queries
):
    top, ip = bomb
    route_budget(4)  # "Effective delivery": the default route only, each rule once

    with django_assert_max_num_queries(40):
        page = browser.get(f"/admin/relays/routingrule/{top.pk}/change/")

    assert page.status_code == 200
    panels = dict(page.context["panels"])
    assert f'href="/admin/relays/ipaddress/{ip.pk}/change/">ip</a>' in panels["Effective delivery"]
    assert "100.0%" in panels["Effective delivery"]


def test_the_render_compiles_the_bomb_with_bounded_work(
    bomb, route_budget, django_assert_max_num_queries
):
    _, ip = bomb
    route_budget(4)  # one transport key (`*`): each rule once

    with django_assert_max_num_queries(60):
        rendering = render("/etc/postfix")

    fallback = next(
        line
        for line in rendering.main_cf.splitlines()
        if line.startswith("sender_dependent_default_transport_maps")
    )
    assert fallback == f"sender_dependent_default_transport_maps = randmap:{{relayapi_ip{ip.pk}:}}"


def test_with_an_override_below_each_domain_walks_the_rules_once(
    bomb, route_budget, django_assert_max_num_queries
):
    """An override on the lowest rule makes every rule above it depend on the domain: the
    render walks each rule once per transport key, still never per path."""
    top, ip = bomb
    rule4 = RoutingRule.objects.get(name="rule4")
    other = IpAddressFactory(name="other")
    add_override(rule4, ["[*.]example.com"], [(other, 1)])
    assert delivery_paths(top, "mail.example.com") == [DeliveryPath(other, 1.0, False)]
    assert delivery_paths(top, "example.org") == [DeliveryPath(ip, 1.0, False)]
    keys = 3  # `*`, example.com and .example.com
    chosen = route_budget(4 * keys)

    with django_assert_max_num_queries(60):
        rendering = render("/etc/postfix")

    assert chosen() == 4 * keys
    assert f"relayapi_ip{other.pk}:" in rendering.main_cf


def test_a_lattice_of_distinct_targets_is_walked_once_per_node(
    db, route_budget, django_assert_max_num_queries
):
    """Distinct targets all the way down, nothing to merge within a route: five levels of ten
    rules, each rule delivering through all ten of the level below, over ten IP addresses, are
    10^5 paths from the top; memoised, each of the 41 rules is walked once."""
    level = [IpAddressFactory(name=f"ip-{i}") for i in range(10)]
    ips = level
    for _ in range(4):
        level = [RoutingRuleFactory(targets=[(n, 1) for n in level]) for _ in range(10)]
    top = RoutingRuleFactory(name="top", targets=[(n, 1) for n in level])
    chosen = route_budget(41)

    with django_assert_max_num_queries(41 * 3 + 10 + 5):
        paths = delivery_paths(top)

    assert chosen() == 41
    assert [p.virtual_mta for p in paths] == ips
    assert all(abs(p.share - 0.1) <= TOLERANCE and not p.paused for p in paths)
    assert abs(sum(p.share for p in paths) - 1) <= TOLERANCE


def test_walks_sharing_a_store_work_each_node_out_once(bomb, route_budget):
    """The render's and the admin's many walks share one Store: a node below a rule without
    overrides is worked out once for every domain asked."""
    top, ip = bomb
    chosen = route_budget(4)
    store = Store()

    for domain in (None, "a.example", "b.example", "mail.example.com"):
        assert delivery_paths(top, domain, store) == [DeliveryPath(ip, 1.0, False)]

    assert chosen() == 4
