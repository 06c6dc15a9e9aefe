"""The reference graph between VirtualMTAs: resolving references, refusing delivery loops, and
finding every referrer. Redirects and routing-rule targets are its edges.
"""

from django.db import connection
from django.db.models import F
from django.db.models.expressions import RawSQL
from django.db.models.functions import Lower

from relays import validators as v
from relays.errors import Problem, ValidationFailed
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
    # An id beyond any column's range names nothing (whatever door let it through).
    ids = {ref["id"] for _, ref in refs if ref["id"] is not None and v.is_record_id(ref["id"])}
    # Names are printable ASCII (validators.name_characters): a non-ASCII one names nothing, and
    # must not reach str.lower(), which folds the Kelvin sign into an ASCII "k".
    names = {ref["name"].lower() for _, ref in refs if ref["id"] is None and ref["name"].isascii()}
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
                problems.append(Problem(path, f"refers to no VirtualMTA with id {ref['id']}"))
        else:
            found[path] = by_name.get(ref["name"].lower()) if ref["name"].isascii() else None
            if found[path] is None:
                problems.append(Problem(path, f"refers to no VirtualMTA named {ref['name']!r}"))
    if problems:
        raise ValidationFailed(problems)
    return found


_CHUNK = 500  # ids per IN (...) list on SQLite: far below its parameter limit


def _id_sets(ids):
    """`ids` as right-hand sides of `__in`: on PostgreSQL one array parameter whatever the size
    (a wide level of the graph, e.g. 50,000 relays redirected to one, is one query); on SQLite
    (in-process, so many small queries are cheap) chunks of a size it accepts."""
    ids = sorted(ids)
    if connection.vendor == "postgresql":
        return [RawSQL("SELECT unnest(%s::bigint[])", (ids,))] if ids else []
    return [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]


def _edges_down(ids):
    """(from, to) for the traffic the given VirtualMTAs hand on: redirects and routing-rule
    targets."""
    for chunk in _id_sets(ids):
        yield from VirtualMta.objects.filter(id__in=chunk, redirect__isnull=False).values_list(
            "id", "redirect_id"
        )
        yield from DeliverThrough.objects.filter(rule_id__in=chunk).values_list(
            "rule_id", "virtual_mta_id"
        )


def _edges_up(ids):
    """(to, from) for the traffic handed to the given VirtualMTAs."""
    for chunk in _id_sets(ids):
        yield from VirtualMta.objects.filter(redirect_id__in=chunk).values_list("redirect_id", "id")
        yield from DeliverThrough.objects.filter(virtual_mta_id__in=chunk).values_list(
            "virtual_mta_id", "rule_id"
        )


def _walk(start_ids, edges, stop_at=None):
    """Walk the graph level by level from `start_ids` (level 1) along `edges`.

    Returns (levels, parent, reached): the number of levels walked, i.e. the longest path from
    the starts counted in VirtualMTAs (a node may come back at a deeper level), capped at
    MAX_DELIVERY_HOPS + 1 so the work is bounded whatever the graph; the node each node was
    first reached from; and whether `stop_at` was reached (the walk stops there). One round of
    queries per level.
    """
    parent = dict.fromkeys(start_ids)
    level, levels = set(start_ids), 0
    while level and levels <= v.MAX_DELIVERY_HOPS:
        levels += 1
        if stop_at in level:
            return levels, parent, True
        following = set()
        for src, dst in edges(level):
            parent.setdefault(dst, src)
            following.add(dst)
        level = following
    return levels, parent, False


def find_loop(source_id, target_ids):
    """The path target -> ... -> source if `source` handing traffic to `target_ids` would close a
    loop, else None."""
    _, parent, reached = _walk(target_ids, _edges_down, stop_at=source_id)
    if not reached:
        return None
    path, node = [], source_id
    while node is not None:
        path.append(node)
        node = parent[node]
    return list(reversed(path))


def assert_hand_off_allowed(source, groups):
    """Refuse the write if `source` handing traffic to the targets in `groups`, a list of
    (attribute path, [VirtualMTA]), would close a delivery loop or make a delivery path of more
    than MAX_DELIVERY_HOPS hand-offs (redirects and routing-rule targets); each problem is
    reported on the attribute that causes it.

    One walk down from every target at once, and one up from the source; only when either
    finds a problem is each attribute walked on its own, to say which.
    """
    problems = [
        f"{path} must not point at the VirtualMTA itself"
        for path, targets in groups
        if source.id is not None and source.id in {t.id for t in targets}
    ]
    if problems:
        raise ValidationFailed(problems)
    # Hand-offs on the longest path into the source; a new record has none.
    above = _walk([source.id], _edges_up)[0] - 1 if source.id is not None else 0
    all_ids = {t.id for _, targets in groups for t in targets}
    below, _, looped = _walk(all_ids, _edges_down, stop_at=source.id)
    if not looped and above + below <= v.MAX_DELIVERY_HOPS:
        return
    for path, targets in groups:
        ids = [t.id for t in targets]
        loop = find_loop(source.id, ids) if source.id is not None else None
        if loop:
            names = dict(VirtualMta.objects.filter(id__in=loop).values_list("id", "name"))
            chain = " -> ".join([source.name, *(names[i] for i in loop)])
            problems.append(f"{path} would create a delivery loop: {chain}")
        elif above + _walk(ids, _edges_down)[0] > v.MAX_DELIVERY_HOPS:
            problems.append(
                f"{path} would make a delivery path of more than {v.MAX_DELIVERY_HOPS} hand-offs "
                "(redirects and routing-rule targets)"
            )
    raise ValidationFailed(problems)


def _redirect_referrers(redirects):
    return [{"type": t, "id": i, "name": n, "attribute": "redirect"} for t, i, n in redirects]


def _route_referrers(routes):
    found = []
    for route in routes:
        rule = route.rule
        if route.override is None:
            attribute = f"default.deliver_through[{route.position}].virtual_mta"
        else:
            attribute = f"domain_overrides[{route.override.position}].deliver_through[{route.position}].virtual_mta"
        found.append({"type": rule.type, "id": rule.id, "name": rule.name, "attribute": attribute})
    return found


def referrers(vmta, offset=0, limit=None):
    """(total, page): every record that refers to `vmta` is [{type, id, name, attribute}],
    ordered by referrer (redirects, routing-rule targets, the default); `page` holds the ones
    from `offset`, at most `limit` (all when None).

    The same list answers `used_by` and explains a refused delete. Only the page's rows are
    read, so a VirtualMTA with 100,000 referrers costs what one with ten does: a count per kind
    of reference, and a query for each kind the page reaches.
    """
    redirects = vmta.redirected_from.order_by("id").values_list("type", "id", "name")
    # The default route (no override) first on every database: NULLs sort differently.
    routes = vmta.routed_from.select_related("rule", "override").order_by(
        "rule_id", F("override__position").asc(nulls_first=True), "position"
    )
    is_default = DefaultVirtualMta.objects.filter(virtual_mta=vmta).exists()
    default = [
        {"type": "default_virtual_mta", "id": None, "name": None, "attribute": "virtual_mta"}
    ]
    kinds = [
        (redirects.count(), lambda lo, hi: _redirect_referrers(redirects[lo:hi])),
        (routes.count(), lambda lo, hi: _route_referrers(routes[lo:hi])),
        (int(is_default), lambda lo, hi: default[lo:hi]),
    ]
    total = sum(count for count, _ in kinds)
    end = total if limit is None else min(total, offset + limit)
    page, start = [], 0  # start: where this kind begins in the whole list
    for count, rows in kinds:
        lo, hi = max(offset, start) - start, min(end, start + count) - start
        if lo < hi:
            page += rows(lo, hi)
        start += count
    return total, page


def referrer_sentence(vmta, r):
    if r["type"] == "default_virtual_mta":
        return f"{describe(vmta)} is the default VirtualMTA"
    return (
        f"{describe(vmta)} is used by {r['type']} {r['id']} ({r['name']}) as its {r['attribute']}"
    )
