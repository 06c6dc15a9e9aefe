"""Where mail for a VirtualMTA really goes, after redirects and routing rules.

Not exposed in the GreenArrow responses: an extra attribute would break the vendor's shapes (and
a client PUTting back what it got would then send an unknown attribute). It is a function for
the delivery side and for tools.
"""

from dataclasses import dataclass

from relays.models import IpAddress, RelayServer, RoutingRule, VirtualMta


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


def route_for(rule, domain):
    """The route a routing rule uses for `domain`: (randomization_type, deliver_through rows).

    The first domain override (in list order) with a matching pattern wins; otherwise the
    default route applies.
    """
    if domain is not None:
        for override in rule.domain_overrides.all():
            if any(domain_matches(d, domain) for d in override.domain_list):
                return override.randomization_type, list(
                    override.deliver_through.select_related("virtual_mta")
                )
    return rule.default_randomization_type, list(
        rule.deliver_through.filter(override=None).select_related("virtual_mta")
    )


def delivery_paths(vmta, domain=None):
    """The final paths for mail sent through `vmta` (to a recipient at `domain`, which selects a
    routing rule's domain override), merged per path and ordered by id.

    An IP address that is paused is final even when redirected: the pause wins, and mail waits.
    """
    shares = {}

    def final(node, share, paused):
        shares[node.id] = (node, shares.get(node.id, (None, 0))[1] + share, paused)

    def walk(node, share, seen):
        if node.id in seen:  # the write services refuse loops; never recurse forever regardless
            raise ValueError(f"delivery loop through {node.name}")
        seen = seen | {node.id}
        concrete = {
            "ip_address": IpAddress,
            "relay_server": RelayServer,
            "routing_rule": RoutingRule,
        }[node.type].objects.get(pk=node.pk)
        if isinstance(concrete, IpAddress) and concrete.delivery_paused:
            return final(concrete, share, paused=True)
        if concrete.redirect_id is not None:
            return walk(concrete.redirect, share, seen)
        if isinstance(concrete, RoutingRule):
            _, targets = route_for(concrete, domain)
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
