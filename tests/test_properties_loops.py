"""Properties of the delivery-loop check and the hop limit (relays.references), exercised through
the write services with random graphs of redirects and routing-rule targets.

README ("No delivery loops", "Limits"): a write that would close a loop through redirects and
routing-rule targets is refused on the attribute that closes it; so is one that would make a
delivery path of more than MAX_DELIVERY_HOPS hand-offs (`a -> b -> c` is 2); a target that is the
record itself is refused as such; a refused write changes nothing. The test keeps its own copy of
the graph and decides each write with its own cycle and longest-path computations.
"""

import functools
import itertools
import re
from unittest import mock

from hypothesis import event, given
from hypothesis import strategies as st

from relays import services
from relays import validators as v
from relays.errors import ValidationFailed
from relays.models import (
    AuditEntry,
    DeliverThrough,
    IpAddress,
    RelayServer,
    RoutingRule,
    VirtualMta,
)
from tests.conftest import db_snapshot
from tests.factories import IpAddressFactory, RelayServerFactory, RoutingRuleFactory
from tests.properties import examples, rolled_back

MODELS = {"ip": IpAddress, "relay": RelayServer, "rule": RoutingRule}
FACTORIES = {"ip": IpAddressFactory, "relay": RelayServerFactory, "rule": RoutingRuleFactory}


class Graph:
    """The test's own model of the store: each node's redirect, default route and overrides."""

    def __init__(self, kinds):
        self.kinds = kinds
        self.redirect = [None] * len(kinds)
        self.default = [[] for _ in kinds]
        self.overrides = [[] for _ in kinds]

    def edges(self, i):
        found = set(self.default[i]) | {t for route in self.overrides[i] for t in route}
        return found | ({self.redirect[i]} if self.redirect[i] is not None else set())

    def changed(self, write):
        """A copy of the graph with `write` applied."""
        new = Graph(self.kinds)
        new.redirect = list(self.redirect)
        new.default = [list(r) for r in self.default]
        new.overrides = [[list(r) for r in o] for o in self.overrides]
        src, attribute, value = write
        if attribute == "redirect":
            new.redirect[src] = value
        else:
            default, overrides = value
            if default is not None:
                new.default[src] = list(default)
            if overrides is not None:
                new.overrides[src] = [list(r) for r in overrides]
        return new

    def has_cycle(self):
        state = {}  # 1: on the current path, 2: done

        def visit(i):
            state[i] = 1
            for j in self.edges(i):
                if state.get(j) == 1 or (j not in state and visit(j)):
                    return True
            state[i] = 2
            return False

        return any(i not in state and visit(i) for i in range(len(self.kinds)))

    def reaches(self, start, goal):
        seen, todo = set(), [start]
        while todo:
            i = todo.pop()
            if i == goal:
                return True
            if i not in seen:
                seen.add(i)
                todo += self.edges(i)
        return False

    # Longest paths in hand-offs, on an acyclic graph.
    def longest_from(self, i):
        @functools.cache
        def down(j):
            return max((1 + down(k) for k in self.edges(j)), default=0)

        return down(i)

    def longest_into(self, i):
        @functools.cache
        def up(j):
            return max((1 + up(k) for k in range(len(self.kinds)) if j in self.edges(k)), default=0)

        return up(i)

    def longest(self):
        return max(self.longest_from(i) for i in range(len(self.kinds)))


def groups(write):
    """(attribute path, [target]) of every reference the write adds, as the service names them."""
    _, attribute, value = write
    if attribute == "redirect":
        return [("redirect", [value])] if value is not None else []
    default, overrides = value
    found = [("default.deliver_through", default)] if default is not None else []
    return found + [
        (f"domain_overrides[{k}].deliver_through", route) for k, route in enumerate(overrides or [])
    ]


def service_data(write, ids):
    _, attribute, value = write

    def ref(t):
        return {"id": ids[t], "name": None}

    if attribute == "redirect":
        return {"redirect": None if value is None else ref(value)}
    default, overrides = value
    route = lambda targets: [{"virtual_mta": ref(t), "portion_of_mail": 1.0} for t in targets]  # noqa: E731
    data = {}
    if default is not None:
        data["default_deliver_through"] = route(default)
    if overrides is not None:
        data["domain_overrides"] = [
            {
                "domain_list": [f"d{k}.example.com"],
                "randomization_type": "random",
                "deliver_through": route(targets),
            }
            for k, targets in enumerate(overrides)
        ]
    return data


def stored_graph(kinds, ids):
    """The graph as the database holds it, in the test's terms."""
    index = {vmta_id: i for i, vmta_id in enumerate(ids) if vmta_id is not None}
    graph = Graph(kinds)
    for vmta_id, redirect in VirtualMta.objects.filter(id__in=index).values_list("id", "redirect"):
        graph.redirect[index[vmta_id]] = index.get(redirect)
    rows = DeliverThrough.objects.order_by("rule", "override__position", "position").values_list(
        "rule", "override__position", "virtual_mta"
    )
    for rule, override, target in rows:
        i = index[rule]
        if override is None:
            graph.default[i].append(index[target])
        else:
            while len(graph.overrides[i]) <= override:
                graph.overrides[i].append([])
            graph.overrides[i][override].append(index[target])
    return graph


LOOP = re.compile(r"(.+) would create a delivery loop: (.+)")
HOPS = re.compile(r"(.+) would make a delivery path of more than (\d+) hand-offs .*")

CREATE = {
    "ip": {"ip": "10.0.0.1", "hostname": "out.example.com"},
    "relay": {
        "source_ip": "127.0.0.2",
        "source_hostname": "out.example.com",
        "destination_hostname": "smtp.example.com",
        "destination_port": 25,
        "max_concurrent_connections": 0,
        "max_messages_per_hour": 0,
    },
    "rule": {"default_randomization_type": "random"},
}


def write_through_service(kinds, write, ids):
    """Update the record, or create it (with these references) when it does not exist yet."""
    src = write[0]
    model, data = MODELS[kinds[src]], service_data(write, ids)
    if ids[src] is None:
        created = services.create_virtual_mta(
            model, {"name": f"n{src}", **CREATE[kinds[src]], **data}
        )
        ids[src] = created.id
    else:
        services.update_virtual_mta(model, ids[src], data)


def check_write(graph, write, ids, limit):
    """Apply `write` through the service; assert the outcome the test's own graph predicts.
    Returns the graph after the write (unchanged when it is refused)."""
    src = write[0]
    new = graph.changed(write)
    written = groups(write)
    selfish = {path for path, targets in written if src in targets}
    cyclic = new.has_cycle()
    too_long = not cyclic and new.longest() > limit
    refuse = bool(selfish) or cyclic or too_long
    outcome = "self" if selfish else "loop" if cyclic else "hops" if too_long else "no"
    event(f"{'create' if ids[src] is None else 'update'} refused: {outcome}")

    before = (db_snapshot(), AuditEntry.objects.count()) if refuse else None
    try:
        write_through_service(graph.kinds, write, ids)
    except ValidationFailed as error:
        assert refuse, f"refused, but the write closes no loop and keeps to {limit}: {error}"
        assert (db_snapshot(), AuditEntry.objects.count()) == before
        messages = error.messages
    else:
        assert not refuse, f"accepted, but: self {selfish}, loop {cyclic}, too long {too_long}"
        assert stored_graph(graph.kinds, ids).__dict__ == new.__dict__
        return new

    if selfish:
        assert sorted(messages) == sorted(
            f"{p} must not point at the VirtualMTA itself" for p in selfish
        )
        return graph
    names = {f"n{i}": i for i in range(len(graph.kinds))}
    if cyclic:
        # Exactly the attributes whose targets lead back to the record get a loop message,
        # and each spells out a real loop that starts with that attribute's hand-off.
        closing = {p for p, targets in written if any(new.reaches(t, src) for t in targets)}
        loops = {}
        for message in messages:
            if match := LOOP.fullmatch(message):
                loops[match[1]] = [names[n] for n in match[2].split(" -> ")]
            else:
                assert HOPS.fullmatch(message), message
        assert set(loops) == closing, messages
        for path, chain in loops.items():
            assert chain[0] == chain[-1] == src
            assert chain[1] in dict(written)[path]
            assert all(b in new.edges(a) for a, b in itertools.pairwise(chain))
        return graph
    # Acyclic but too long: exactly the attributes with a hand-off on a too-long path.
    above = new.longest_into(src)
    too_long_paths = {
        p for p, targets in written if any(above + 1 + new.longest_from(t) > limit for t in targets)
    }
    assert {HOPS.fullmatch(m)[1] for m in messages} == too_long_paths, messages
    assert all(HOPS.fullmatch(m)[2] == str(limit) for m in messages)
    return graph


def make_nodes(kinds, limit, initial=None):
    """The VirtualMTAs n0, n1, ... in order: each created through the service with its
    `initial` references (to earlier nodes) when it has some, and checked like any write;
    otherwise (or when that create is refused) as a bare record. Returns (ids, graph)."""
    ids, graph = [None] * len(kinds), Graph(kinds)
    for i, kind in enumerate(kinds):
        if initial and initial[i] is not None:
            graph = check_write(graph, (i, *initial[i]), ids, limit)
        if ids[i] is None:
            ids[i] = FACTORIES[kind](name=f"n{i}").id
    return ids, graph


@st.composite
def initial_references(draw, kinds):
    """For each node, None or the references it is created with: earlier nodes only (a new
    record cannot close a loop, but it can make a path too long)."""
    found = [None]
    for i in range(1, len(kinds)):
        earlier = st.one_of(st.just(i - 1), st.integers(0, i - 1))
        if not draw(st.booleans()):
            found.append(None)
        elif kinds[i] != "rule":
            found.append(("redirect", draw(earlier)))
        else:
            route = st.lists(earlier, min_size=1, max_size=3)
            found.append(("route", (draw(route), draw(st.lists(route, max_size=2)))))
    return found


@st.composite
def writes(draw, kinds, count):
    """Writes of redirects (IP addresses, relay servers) and routes (routing rules). Targets
    lean towards the next few nodes, so that chains (and so long paths and loops) are common;
    the record itself is a target now and then."""
    n = len(kinds)
    found = []
    for _ in range(count):
        src = draw(st.integers(0, n - 1))
        node = st.one_of(
            st.integers(1, 2).map(lambda step, src=src: (src + step) % n),
            st.integers(0, n - 1),
        )
        if kinds[src] != "rule":
            found.append((src, "redirect", draw(st.one_of(node, node, st.none()))))
            continue
        route = st.lists(node, min_size=1, max_size=3)
        default = draw(st.one_of(route, route, st.none()))
        overrides = st.lists(route, max_size=2)
        overrides = draw(overrides if default is None else st.one_of(st.none(), overrides))
        found.append((src, "route", (default, overrides)))
    return found


@st.composite
def graphs(draw):
    """(node kinds, hop limit, initial references, writes)."""
    kinds = draw(st.lists(st.sampled_from(list(MODELS)), min_size=3, max_size=8))
    limit = draw(st.sampled_from([1, 2, 3, 4, v.MAX_DELIVERY_HOPS]))
    initial = draw(initial_references(kinds))
    plan = draw(st.integers(3, 12).flatmap(lambda count: writes(kinds, count)))
    return kinds, limit, initial, plan


@examples(30)
@given(graphs())
def test_a_write_is_refused_exactly_when_it_closes_a_loop_or_exceeds_the_hop_limit(db, graph):
    """Records created with references to earlier ones, then redirects and routes rewritten at
    random: each write is accepted or refused as the test's own graph says, and the database
    then holds exactly that graph. The hop limit is also lowered (patched), so that random
    graphs of a few records reach it."""
    kinds, limit, initial, plan = graph
    with rolled_back(), mock.patch.object(v, "MAX_DELIVERY_HOPS", limit):
        ids, model = make_nodes(kinds, limit, initial)
        for write in plan:
            model = check_write(model, write, ids, limit)


@examples(4)
@given(
    data=st.data(),
    kinds=st.lists(
        st.sampled_from(list(MODELS)),
        min_size=v.MAX_DELIVERY_HOPS + 1,  # a whole chain of exactly the limit, or longer
        max_size=v.MAX_DELIVERY_HOPS + 3,
    ),
)
def test_the_real_hop_limit_holds_whichever_order_a_long_chain_is_written_in(db, data, kinds):
    """A chain n0 -> n1 -> ... written link by link in any order: a link is refused exactly when
    the chain it completes would be longer than MAX_DELIVERY_HOPS hand-offs, counted above and
    below the record written; closing the chain into a ring is refused as a loop."""
    order = data.draw(st.permutations(range(len(kinds) - 1)))
    with rolled_back():
        ids, graph = make_nodes(kinds, v.MAX_DELIVERY_HOPS)
        for i in order:
            link = (i, "redirect", i + 1) if kinds[i] != "rule" else (i, "route", ([i + 1], None))
            graph = check_write(graph, link, ids, v.MAX_DELIVERY_HOPS)
        last = len(kinds) - 1
        ring = (last, "redirect", 0) if kinds[last] != "rule" else (last, "route", ([0], None))
        check_write(graph, ring, ids, v.MAX_DELIVERY_HOPS)
        for write in data.draw(writes(kinds, 3)):
            graph = check_write(graph, write, ids, v.MAX_DELIVERY_HOPS)
