"""The reference graph between VirtualMTAs: resolving references, refusing delivery loops, and
finding every referrer. Redirects and routing-rule targets are its edges.
"""

from django.db import connection
from django.db.models import F
from django.db.models.functions import Lower

from relays.errors import ValidationFailed
from relays.models import DefaultVirtualMta, DeliverThrough, VirtualMta

# Any constant works: it names "the reference graph" among PostgreSQL's advisory locks.
_REFERENCE_LOCK_KEY = 0x52454C41  # "RELA"


def lock_references():
    """Serialise every write that adds or removes a reference between VirtualMTAs.

    A loop check reads the graph and then writes edges; two requests closing a loop from both
    ends (A->B and B->A) would each see no loop unless they run one after the other. Taking one
    transaction-scoped advisory lock first also fixes the order in which such writes lock rows,
    so they cannot deadlock. On SQLite every write transaction already holds the database's
    write lock (BEGIN IMMEDIATE), which serialises them the same way.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_REFERENCE_LOCK_KEY])


def describe(vmta):
    """How messages name a VirtualMTA: `relay_server 4 (relay-1)`."""
    return f"{vmta.type} {vmta.id} ({vmta.name})"


def resolve_references(refs):
    """The VirtualMTAs named by reference hashes, as {path: VirtualMTA}: by `id` when given (the
    `name` is then ignored), otherwise by `name`, case-insensitively. Two queries at most.

    `refs` is a list of (path, {"id", "name"}); every unresolved one is reported at once.
    """
    ids = {ref["id"] for _, ref in refs if ref["id"] is not None}
    names = {ref["name"].lower() for _, ref in refs if ref["id"] is None}
    by_id = {m.id: m for m in VirtualMta.objects.filter(id__in=ids)} if ids else {}
    by_name = (
        {
            m.lname: m
            for m in VirtualMta.objects.annotate(lname=Lower("name")).filter(lname__in=names)
        }
        if names
        else {}
    )
    found, problems = {}, []
    for path, ref in refs:
        if ref["id"] is not None:
            found[path] = by_id.get(ref["id"])
            if found[path] is None:
                problems.append(f"{path} refers to no VirtualMTA with id {ref['id']}")
        else:
            found[path] = by_name.get(ref["name"].lower())
            if found[path] is None:
                problems.append(f"{path} refers to no VirtualMTA named {ref['name']!r}")
    if problems:
        raise ValidationFailed(problems)
    return found


def _edges_from(ids):
    """(from, to) pairs for the traffic the given VirtualMTAs hand on: redirects and routing-rule
    targets, one query each."""
    redirects = VirtualMta.objects.filter(id__in=ids, redirect__isnull=False).values_list(
        "id", "redirect_id"
    )
    routes = DeliverThrough.objects.filter(rule_id__in=ids).values_list("rule_id", "virtual_mta_id")
    return [*redirects, *routes]


def find_loop(source_id, target_ids):
    """The path target -> ... -> source if `source` handing traffic to `target_ids` would close a
    loop, else None. Walks the graph breadth-first, one round of queries per level."""
    parent = dict.fromkeys(target_ids)
    level = set(target_ids)
    while level:
        if source_id in level:
            path, node = [], source_id
            while node is not None:
                path.append(node)
                node = parent[node]
            return list(reversed(path))
        following = set()
        for src, dst in _edges_from(level):
            if dst not in parent:
                parent[dst] = src
                following.add(dst)
        level = following
    return None


def assert_no_loop(source, targets, path):
    """Refuse the write if `source` handing traffic to `targets` (through its attribute `path`)
    would close a loop."""
    if source.id is None:  # a new record has no referrers yet, so it cannot close a loop
        return
    target_ids = [t.id for t in targets]
    if source.id in target_ids:
        raise ValidationFailed(f"{path} must not point at the VirtualMTA itself")
    loop = find_loop(source.id, target_ids)
    if loop:
        names = dict(VirtualMta.objects.filter(id__in=loop).values_list("id", "name"))
        chain = " -> ".join([source.name, *(names[i] for i in loop)])
        raise ValidationFailed(f"{path} would create a delivery loop: {chain}")


def referrers(vmta):
    """Every record that refers to `vmta`: [{type, id, name, attribute}], ordered by referrer.

    The same list answers `used_by` and explains a refused delete. Three queries.
    """
    found = [
        {"type": r.type, "id": r.id, "name": r.name, "attribute": "redirect"}
        for r in vmta.redirected_from.order_by("id")
    ]
    # The default route (no override) first on every database: NULLs sort differently.
    routes = vmta.routed_from.select_related("rule", "override").order_by(
        "rule_id", F("override__position").asc(nulls_first=True), "position"
    )
    for route in routes:
        rule = route.rule
        if route.override is None:
            attribute = f"default.deliver_through[{route.position}].virtual_mta"
        else:
            attribute = f"domain_overrides[{route.override.position}].deliver_through[{route.position}].virtual_mta"
        found.append({"type": rule.type, "id": rule.id, "name": rule.name, "attribute": attribute})
    if DefaultVirtualMta.objects.filter(virtual_mta=vmta).exists():
        found.append(
            {"type": "default_virtual_mta", "id": None, "name": None, "attribute": "virtual_mta"}
        )
    return found


def referrer_sentence(vmta, r):
    if r["type"] == "default_virtual_mta":
        return f"{describe(vmta)} is the default VirtualMTA"
    return (
        f"{describe(vmta)} is used by {r['type']} {r['id']} ({r['name']}) as its {r['attribute']}"
    )
