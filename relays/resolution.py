"""Where mail for a VirtualMTA really goes, after redirects and routing rules.

Not exposed in the GreenArrow responses: an extra attribute would break the vendor's shapes (and
a client PUTting back what it got would then send an unknown attribute). It is a function for
the delivery side and for tools.
"""

from dataclasses import dataclass

from relays import holds
from relays.models import DeliverThrough, IpAddress, RelayServer, RoutingRule, VirtualMta


@dataclass(frozen=True)
class DeliveryPath:
    """A final delivery path and the share of the mail it receives (shares sum to 1)."""

    virtual_mta: VirtualMta
    share: float
    paused: bool = False

    @property
    def held(self):
        """Why its mail waits, or None (relays.holds, as the Postfix compiler decides it)."""
        return holds.held(self.virtual_mta)


def domain_matches(pattern, domain):
    """`[*.]x` matches x and its subdomains, `*.x` only its subdomains, `x` only x."""
    pattern, domain = pattern.lower(), domain.lower().rstrip(".")
    if pattern.startswith("[*.]"):
        base = pattern[4:]
        return domain == base or domain.endswith("." + base)
    if pattern.startswith("*."):
        return domain.endswith(pattern[1:])
    return domain == pattern


class Store:
    """What `delivery_paths` reads and works out, each once: the walks of one request or one
    render (every route of a routing rule in the admin, every transport key of a Postfix render)
    share one Store, so a VirtualMTA reached by many routes costs one query, not one per walk,
    and its paths are worked out once, not once per way mail reaches it. Holds what it read:
    make a new one for a newer state of the database."""

    MODELS = {"ip_address": IpAddress, "relay_server": RelayServer, "routing_rule": RoutingRule}

    def __init__(self):
        self._records = {}
        self._nodes = {}
        self._routes = {}
        # The shares below each node walked (see `_shares`): by node id where they are the same
        # for every domain, by (node id, domain) where a routing rule's domain override may
        # change them.
        self._shares = {}
        self._shares_for_domain = {}

    def concrete(self, node):
        """`node` as its own type (an IpAddress, RelayServer or RoutingRule), its redirect
        loaded with it."""
        if node.pk not in self._records:
            model = self.MODELS[node.type]
            self._records[node.pk] = model.objects.select_related("redirect").get(pk=node.pk)
        return self._records[node.pk]

    def routes(self, rule):
        """(default route, [(override's domains, its route)]) of `rule`, in list order; a
        route is (randomization_type, [(target VirtualMTA, portion_of_mail)]) in order.

        Four queries whatever the rule's size (1,000 overrides of 20 targets are 20,000 rows,
        read as plain values), and one more per 500 distinct targets past the first 500."""
        if rule.pk not in self._routes:
            rows = list(
                DeliverThrough.objects.filter(rule=rule).values_list(
                    "override_id", "virtual_mta_id", "portion_of_mail"
                )
            )
            by_route = {}
            for override_id, target_id, portion in rows:
                by_route.setdefault(override_id, []).append((target_id, portion))
            self._load_nodes({target_id for _, target_id, _ in rows})

            def route(randomization_type, override_id):
                targets = by_route.get(override_id, [])
                return randomization_type, [(self._nodes[t], portion) for t, portion in targets]

            self._routes[rule.pk] = (
                route(rule.default_randomization_type, None),
                [
                    (o.domain_list, route(o.randomization_type, o.id))
                    for o in rule.domain_overrides.prefetch_related("domains")
                ],
            )
        return self._routes[rule.pk]

    def _load_nodes(self, ids):
        missing = sorted(set(ids) - self._nodes.keys())
        for at in range(0, len(missing), 500):  # IN lists far below SQLite's parameter limit
            for node in VirtualMta.objects.filter(id__in=missing[at : at + 500]):
                self._nodes[node.id] = node

    def known_shares(self, node_id, domain):
        """What `_shares` found for the node (and the domain, where it matters), or None."""
        if node_id in self._shares:
            return self._shares[node_id]
        return self._shares_for_domain.get((node_id, domain))

    def remember_shares(self, node_id, domain, found):
        _, depends_on_domain = found
        if depends_on_domain:
            self._shares_for_domain[node_id, domain] = found
        else:
            self._shares[node_id] = found


def route_for(rule, domain, store=None):
    """The route a routing rule uses for `domain`: (randomization_type, [(target VirtualMTA,
    portion_of_mail)]).

    The first domain override (in list order) with a matching pattern wins; otherwise the
    default route applies.
    """
    default, overrides = (store or Store()).routes(rule)
    if domain is not None:
        for patterns, route in overrides:
            if any(domain_matches(d, domain) for d in patterns):
                return route
    return default


def delivery_paths(vmta, domain=None, store=None):
    """The final paths for mail sent through `vmta` (to a recipient at `domain`, which selects a
    routing rule's domain override), merged per path and ordered by id. Walks that share a
    `store` read each record once and work out each node's paths once.

    An IP address that is paused is final even when redirected: the pause wins, and mail waits.

    The work is that of the graph, never of its number of paths: each node below `vmta` is
    walked once (four rules of 100 targets, one under the other, are 10^8 paths and 400 steps),
    at a cost of its distinct targets times the final paths they reach.
    """
    shares, _ = _shares(vmta, domain, store or Store(), set())
    return [
        DeliveryPath(node, share, paused) for _, (node, share, paused) in sorted(shares.items())
    ]


def _shares(node, domain, store, walking):
    """({final path's id: (its VirtualMTA, share, paused)}, depends on the domain) for mail sent
    through `node`; the shares sum to 1 (none: a rule with an empty route delivers nowhere).

    Remembered in `store`: by node where no routing rule below it has a domain override (the
    same for every domain), else by (node, domain). `walking` holds the nodes being walked, the
    path down to this one."""
    known = store.known_shares(node.id, domain)
    if known is not None:
        return known
    if node.id in walking:  # the write services refuse loops; never recurse forever regardless
        raise ValueError(f"delivery loop through {node.name}")
    walking.add(node.id)
    concrete = store.concrete(node)
    if isinstance(concrete, IpAddress) and concrete.delivery_paused:
        found = ({concrete.id: (concrete, 1.0, True)}, False)
    elif concrete.redirect_id is not None:
        found = _shares(concrete.redirect, domain, store, walking)
    elif isinstance(concrete, RoutingRule):
        found = _route_shares(concrete, domain, store, walking)
    else:
        found = ({concrete.id: (concrete, 1.0, False)}, False)
    walking.discard(node.id)
    store.remember_shares(node.id, domain, found)
    return found


def _route_shares(rule, domain, store, walking):
    """`_shares` for a routing rule: its route for `domain`, each target's shares scaled by the
    target's fraction of the route."""
    _, overrides = store.routes(rule)
    _, targets = route_for(rule, domain, store)
    # A target named more than once in a route is one way on: walked once, its portions added.
    weights, nodes = {}, {}
    for node, portion in targets:
        weights[node.id] = weights.get(node.id, 0) + portion
        nodes.setdefault(node.id, node)
    total = sum(portion for _, portion in targets)
    shares, depends_on_domain = {}, bool(overrides)
    for target_id, weight in weights.items():
        below, below_depends = _shares(nodes[target_id], domain, store, walking)
        depends_on_domain = depends_on_domain or below_depends
        # The target's fraction of the route first: `share * portion / total` could round
        # `share * portion` to 0 for the smallest valid portions (5e-324 is one), and the
        # shares of a nested route would then no longer sum to its share.
        fraction = weight / total
        for final_id, (final, share, paused) in below.items():
            before = shares[final_id][1] if final_id in shares else 0.0
            shares[final_id] = (final, before + fraction * share, paused)
    return shares, depends_on_domain
