"""Where mail for a VirtualMTA really goes, after redirects and routing rules.

Not exposed in the GreenArrow responses: an extra attribute would break the vendor's shapes (and
a client PUTting back what it got would then send an unknown attribute). It is a function for
the delivery side and for tools.
"""

from dataclasses import dataclass

from django.db.models import Prefetch

from relays.models import DeliverThrough, IpAddress, RelayServer, RoutingRule, VirtualMta


@dataclass(frozen=True)
class DeliveryPath:
    """A final delivery path and the share of the mail it receives (shares sum to 1)."""

    virtual_mta: VirtualMta
    share: float
    paused: bool = False


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
    """What `delivery_paths` reads, each record once: the walks of one request or one render
    (every route of a routing rule in the admin, every transport key of a Postfix render)
    share one Store, so a VirtualMTA reached by many routes costs one query, not one per walk.
    Holds what it read: make a new one for a newer state of the database."""

    MODELS = {"ip_address": IpAddress, "relay_server": RelayServer, "routing_rule": RoutingRule}

    def __init__(self):
        self._records = {}
        self._routes = {}

    def concrete(self, node):
        """`node` as its own type (an IpAddress, RelayServer or RoutingRule), its redirect
        loaded with it."""
        if node.pk not in self._records:
            model = self.MODELS[node.type]
            self._records[node.pk] = model.objects.select_related("redirect").get(pk=node.pk)
        return self._records[node.pk]

    def routes(self, rule):
        """(default route, [(override's domains, its route)]) of `rule`, in list order; a
        route is (randomization_type, deliver_through rows with their VirtualMTA)."""
        if rule.pk not in self._routes:
            targets = DeliverThrough.objects.select_related("virtual_mta")
            overrides = rule.domain_overrides.prefetch_related(
                "domains", Prefetch("deliver_through", targets)
            )
            self._routes[rule.pk] = (
                (rule.default_randomization_type, list(targets.filter(rule=rule, override=None))),
                [
                    (o.domain_list, (o.randomization_type, list(o.deliver_through.all())))
                    for o in overrides
                ],
            )
        return self._routes[rule.pk]


def route_for(rule, domain, store=None):
    """The route a routing rule uses for `domain`: (randomization_type, deliver_through rows).

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
    `store` read each record once.

    An IP address that is paused is final even when redirected: the pause wins, and mail waits.
    """
    store = store or Store()
    shares = {}

    def final(node, share, paused):
        shares[node.id] = (node, shares.get(node.id, (None, 0))[1] + share, paused)

    def walk(node, share, seen):
        if node.id in seen:  # the write services refuse loops; never recurse forever regardless
            raise ValueError(f"delivery loop through {node.name}")
        seen = seen | {node.id}
        concrete = store.concrete(node)
        if isinstance(concrete, IpAddress) and concrete.delivery_paused:
            return final(concrete, share, paused=True)
        if concrete.redirect_id is not None:
            return walk(concrete.redirect, share, seen)
        if isinstance(concrete, RoutingRule):
            _, targets = route_for(concrete, domain, store)
            total = sum(t.portion_of_mail for t in targets)
            for target in targets:
                # The target's fraction of the route first: `share * portion / total` could
                # round `share * portion` to 0 for the smallest valid portions (5e-324 is one),
                # and the shares of a nested route would then no longer sum to its share.
                walk(target.virtual_mta, share * (target.portion_of_mail / total), seen)
            return
        final(concrete, share, paused=False)

    walk(vmta, 1.0, frozenset())
    return [
        DeliveryPath(node, share, paused) for _, (node, share, paused) in sorted(shares.items())
    ]
