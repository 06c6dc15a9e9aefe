"""Properties of effective delivery (relays.resolution.delivery_paths): how portions of mail
become each final path's share.

From README ("Routing rules", "Effective delivery paths"): portions are weights, a target
receives its portion divided by its route's total; redirects hand the whole share on; a paused
IP address is final even when redirected; final paths reached more than once are merged. So the
share of a final path is, exactly, the sum over every way mail reaches it of the product of
portion/total along the way, and the shares of one VirtualMTA sum to 1.
"""

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from relays import services
from relays import validators as v
from relays.models import RoutingRule
from relays.resolution import Store, delivery_paths
from tests.factories import IpAddressFactory, RelayServerFactory
from tests.properties import examples, rolled_back

TOLERANCE = 1e-9
DOMAIN = "mail.example.com"  # matched by every override these tests write ([*.]example.com)

portions = st.one_of(
    st.floats(min_value=0, max_value=v.PORTION_MAX, exclude_min=True),
    st.integers(1, v.PORTION_MAX).map(float),
    st.sampled_from([5e-324, 1e-310, 1e-300, 1 / 3, 0.1, float(v.PORTION_MAX)]),
)
# The smallest floats there are (multiples of 5e-324, the least subnormal): valid portions too,
# and a route made only of them must still split its share by their ratios.
tiny_portions = st.integers(1, 20).map(lambda k: k * 5e-324)


@st.composite
def delivery_graphs(draw, max_nodes=8):
    """Nodes created in order; each may hand off only to earlier ones (so there is no loop).

    Each node is ("ip", paused, redirect), ("relay", redirect) or ("rule", default route,
    override route or None); a route is [(earlier node, portion), ...] and may name a node
    twice; a redirect is an earlier node or None.
    """
    nodes = []
    for i in range(draw(st.integers(1, max_nodes))):
        earlier = st.integers(0, i - 1) if i else st.nothing()
        redirect = draw(st.one_of(st.none(), earlier)) if i else None
        kind = draw(st.sampled_from(["ip", "relay", "rule"] if i else ["ip", "relay"]))
        if kind == "ip":
            nodes.append(("ip", draw(st.booleans()), redirect))
        elif kind == "relay":
            nodes.append(("relay", redirect))
        else:
            route = st.one_of(
                st.lists(st.tuples(earlier, portions), min_size=1, max_size=4),
                st.lists(st.tuples(earlier, tiny_portions), min_size=1, max_size=4),
            )
            nodes.append(("rule", draw(route), draw(st.one_of(st.none(), route))))
    return nodes


def build(nodes):
    """The graph in the database, routing rules through the write service; [VirtualMTA]."""
    made = []
    for i, node in enumerate(nodes):
        name = f"n{i}"
        if node[0] == "ip":
            _, paused, redirect = node
            target = made[redirect] if redirect is not None else None
            made.append(IpAddressFactory(name=name, delivery_paused=paused, redirect=target))
        elif node[0] == "relay":
            target = made[node[1]] if node[1] is not None else None
            made.append(RelayServerFactory(name=name, redirect=target))
        else:
            _, default, override = node

            def route(items):
                return [
                    {"virtual_mta": {"id": made[t].id, "name": None}, "portion_of_mail": p}
                    for t, p in items
                ]

            data = {
                "name": name,
                "default_randomization_type": "random",
                "default_deliver_through": route(default),
            }
            if override is not None:
                data["domain_overrides"] = [
                    {
                        "domain_list": ["[*.]example.com"],
                        "randomization_type": "random",
                        "deliver_through": route(override),
                    }
                ]
            made.append(services.create_virtual_mta(RoutingRule, data))
    return made


def expected_shares(nodes, start, domain):
    """{node index: (exact share, paused)} computed with fractions from the graph as drawn."""
    shares = {}

    def walk(i, share):
        node = nodes[i]
        if node[0] == "ip" and node[1]:  # paused: final, whatever its redirect
            shares[i] = (shares.get(i, (0, True))[0] + share, True)
        elif node[0] != "rule" and node[-1] is not None:
            walk(node[-1], share)
        elif node[0] == "rule":
            route = node[2] if domain is not None and node[2] is not None else node[1]
            total = sum(Fraction(p) for _, p in route)
            for target, portion in route:
                walk(target, share * Fraction(portion) / total)
        else:
            shares[i] = (shares.get(i, (0, False))[0] + share, False)

    walk(start, Fraction(1))
    return shares


@examples(30)
@given(delivery_graphs())
def test_shares_are_the_exact_products_of_portions_merged_per_final_path(db, nodes):
    for node in nodes:
        if node[0] == "rule":
            for _, portion in node[1] + (node[2] or []):
                v.portion(portion)  # every portion drawn is one the API accepts
    with rolled_back():
        made = build(nodes)
        index = {vmta.id: i for i, vmta in enumerate(made)}
        for start in {len(nodes) - 1, *(i for i, n in enumerate(nodes) if n[0] == "rule")}:
            for domain in (None, DOMAIN):
                paths = delivery_paths(made[start], domain)
                expected = expected_shares(nodes, start, domain)
                assert [p.virtual_mta.id for p in paths] == sorted(made[i].id for i in expected)
                assert all(p.share >= 0 for p in paths)
                assert abs(sum(p.share for p in paths) - 1) <= TOLERANCE, paths
                for path in paths:
                    share, paused = expected[index[path.virtual_mta.id]]
                    assert abs(path.share - float(share)) <= TOLERANCE, (path, float(share))
                    assert path.paused == paused


@examples(20)
@given(delivery_graphs())
def test_walks_sharing_a_store_answer_what_walks_of_their_own_answer(db, nodes):
    """The paths below each node are remembered in the Store (per domain only where an override
    below decides): every start and domain, asked in any order through one Store, gets exactly
    the answer of a fresh walk."""
    with rolled_back():
        made = build(nodes)
        store = Store()
        for domain in (DOMAIN, None, "example.org", DOMAIN):
            for vmta in reversed(made):
                assert delivery_paths(vmta, domain, store) == delivery_paths(vmta, domain)


@examples(25)
@given(
    st.one_of(
        st.lists(portions, min_size=1, max_size=v.MAX_TARGETS_PER_ROUTE),
        st.lists(tiny_portions, min_size=1, max_size=10),
    )
)
def test_one_route_over_distinct_final_paths_is_shared_in_proportion_to_the_weights(db, weights):
    with rolled_back():
        finals = [IpAddressFactory(name=f"final-{i}") for i in range(len(weights))]
        rule = services.create_virtual_mta(
            RoutingRule,
            {
                "name": "rule",
                "default_randomization_type": "random",
                "default_deliver_through": [
                    {"virtual_mta": {"id": f.id, "name": None}, "portion_of_mail": w}
                    for f, w in zip(finals, weights, strict=True)
                ],
            },
        )
        shares = {p.virtual_mta.id: p.share for p in delivery_paths(rule)}
        total = sum(Fraction(w) for w in weights)
        assert abs(sum(shares.values()) - 1) <= TOLERANCE
        for final, weight in zip(finals, weights, strict=True):
            assert shares[final.id] >= 0
            assert abs(shares[final.id] - float(Fraction(weight) / total)) <= TOLERANCE


@examples(20)
@given(delivery_graphs(max_nodes=6), st.integers(1, 4), st.booleans())
def test_a_redirect_passes_the_share_on_unchanged_and_a_pause_keeps_it(
    db, nodes, chain, pause_first
):
    """A chain of redirects in front of any VirtualMTA delivers exactly as that VirtualMTA does;
    pausing the first IP address of the chain makes it the one final path, with all the mail."""
    with rolled_back():
        made = build(nodes)
        target = made[-1]
        front = target
        for i in range(chain):
            factory = IpAddressFactory if i % 2 == 0 else RelayServerFactory
            front = factory(name=f"front-{i}", redirect=front)
        for domain in (None, DOMAIN):
            assert delivery_paths(front, domain) == delivery_paths(target, domain)
        paused = IpAddressFactory(name="paused", redirect=front, delivery_paused=pause_first)
        paths = delivery_paths(paused)
        if pause_first:
            assert [(p.virtual_mta.id, p.share, p.paused) for p in paths] == [
                (paused.id, 1.0, True)
            ]
        else:
            assert paths == delivery_paths(target)
