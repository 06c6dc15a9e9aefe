"""What the database holds after a fault run, read with SQL (not through the app under test):
records half-written, delivery loops, counts, and the core's own delivery-path walk.
"""

import json
from collections import defaultdict

from stack import bench_run

TYPES = {
    "relay_server": "relays_relayserver",
    "ip_address": "relays_ipaddress",
    "routing_rule": "relays_routingrule",
}
MAX_DELIVERY_HOPS = 16  # relays.validators.MAX_DELIVERY_HOPS, the limit the API promises


def half_written(pg, with_deletes):
    """Sentences, one per record that is not whole: a base row without its child row of the
    right type (or the reverse), a routing rule without its default route, a domain override
    without domains or targets, a record without the audit entry of its creation (same
    transaction), an audited create whose record is gone without a delete entry, a ClientToken
    that names no relay, the trigger-kept counts off the rows."""
    problems = []
    for vmta_type, table in TYPES.items():
        rows = pg.sql(
            f"SELECT v.id FROM relays_virtualmta v LEFT JOIN {table} c "
            "ON c.virtualmta_ptr_id = v.id WHERE v.type = %s AND c.virtualmta_ptr_id IS NULL",
            [vmta_type],
        )
        problems += [f"{vmta_type} {r[0]}: base row without its {table} row" for r in rows]
        rows = pg.sql(
            f"SELECT c.virtualmta_ptr_id, v.type FROM {table} c JOIN relays_virtualmta v "
            "ON v.id = c.virtualmta_ptr_id WHERE v.type <> %s",
            [vmta_type],
        )
        problems += [f"{table} row {r[0]} under a base row of type {r[1]}" for r in rows]
    rows = pg.sql(
        "SELECT g.virtualmta_ptr_id FROM relays_routingrule g WHERE NOT EXISTS ("
        "SELECT 1 FROM relays_deliverthrough d WHERE d.rule_id = g.virtualmta_ptr_id "
        "AND d.override_id IS NULL)"
    )
    problems += [f"routing_rule {r[0]}: no default route" for r in rows]
    rows = pg.sql(
        "SELECT o.id, o.rule_id FROM relays_domainoverride o WHERE "
        "NOT EXISTS (SELECT 1 FROM relays_overridedomain d WHERE d.override_id = o.id) OR "
        "NOT EXISTS (SELECT 1 FROM relays_deliverthrough t WHERE t.override_id = o.id)"
    )
    problems += [
        f"routing_rule {r[1]}: domain override {r[0]} without domains or targets" for r in rows
    ]
    rows = pg.sql(
        "SELECT v.id, v.type FROM relays_virtualmta v WHERE NOT EXISTS ("
        "SELECT 1 FROM relays_auditentry a WHERE a.action = 'create' AND a.record_id = v.id "
        "AND a.record_type = v.type)"
    )
    problems += [f"{r[1]} {r[0]}: no audit entry of its creation" for r in rows]
    rows = pg.sql(
        "SELECT a.record_type, a.record_id FROM relays_auditentry a WHERE a.action = 'create' "
        "AND a.record_type IN ('relay_server', 'ip_address', 'routing_rule') "
        "AND NOT EXISTS (SELECT 1 FROM relays_virtualmta v WHERE v.id = a.record_id) "
        "AND NOT EXISTS (SELECT 1 FROM relays_auditentry d WHERE d.action = 'delete' "
        "AND d.record_id = a.record_id AND d.record_type = a.record_type)"
    )
    problems += [f"{r[0]} {r[1]}: audited as created, gone without a delete entry" for r in rows]
    token_query = "SELECT t.token, t.relay_id FROM relays_clienttoken t WHERE t.relay_id = ''"
    if not with_deletes:  # with deletes a token may name a relay deleted since
        token_query += (
            " OR NOT EXISTS (SELECT 1 FROM relays_relayserver r WHERE r.relay_id = t.relay_id)"
        )
    rows = pg.sql(token_query)
    problems += [f"ClientToken {r[0]!r} names no relay ({r[1]!r})" for r in rows]
    for vmta_type, count, rows in counts_off(pg):
        problems.append(f"RecordCount says {count} {vmta_type}, the table holds {rows}")
    return problems


def counts_off(pg):
    """(type, RecordCount's count, rows) wherever the trigger-kept count is off."""
    actual = dict(pg.sql("SELECT type, count(*) FROM relays_virtualmta GROUP BY type"))
    kept = dict(pg.sql("SELECT type, count FROM relays_recordcount"))
    return [
        (t, kept.get(t, 0), actual.get(t, 0)) for t in TYPES if kept.get(t, 0) != actual.get(t, 0)
    ]


def row_counts(pg):
    actual = dict(pg.sql("SELECT type, count(*) FROM relays_virtualmta GROUP BY type"))
    return {t: actual.get(t, 0) for t in TYPES}


def loops_and_depth(pg):
    """(cycles found, longest delivery path in hand-offs) of the reference graph in the
    database: redirects and every routing-rule target (default routes and overrides)."""
    edges = defaultdict(set)
    for src, dst in pg.sql(
        "SELECT id, redirect_id FROM relays_virtualmta WHERE redirect_id IS NOT NULL "
        "UNION SELECT rule_id, virtual_mta_id FROM relays_deliverthrough"
    ):
        edges[src].add(dst)
    nodes = {n for n, _ in pg.sql("SELECT id, 1 FROM relays_virtualmta")}
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(nodes, white)
    depth, cycles = {}, []
    for root in sorted(nodes):
        if colour[root] != white:
            continue
        stack = [(root, iter(sorted(edges.get(root, ()))))]
        path = [root]
        colour[root] = grey
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                colour[node] = black
                depth[node] = max((depth.get(c, 0) + 1 for c in edges.get(node, ())), default=0)
                continue
            if colour.get(child, black) == grey:
                cycles.append([*path[path.index(child) :], child])
            elif colour.get(child) == white:
                colour[child] = grey
                path.append(child)
                stack.append((child, iter(sorted(edges.get(child, ())))))
    return cycles, max(depth.values(), default=0)


# Run inside the app (manage.py shell): relays.resolution.delivery_paths for every VirtualMTA,
# for no domain and for a domain each override pattern matches.
_CORE_WALK = """
import json
from relays.models import OverrideDomain, VirtualMta
from relays.resolution import delivery_paths

domains = {None}
for pattern in OverrideDomain.objects.values_list("domain", flat=True).distinct():
    base = pattern.removeprefix("[*.]").removeprefix("*.")
    domains.add("mail." + base)
    domains.add(base)
walked, loops, bad_shares = 0, [], []
for vmta in VirtualMta.objects.all():
    for domain in sorted(domains, key=str):
        try:
            paths = delivery_paths(vmta, domain)
        except ValueError as error:
            loops.append(f"{vmta.type} {vmta.id} ({domain}): {error}")
            continue
        walked += 1
        total = sum(p.share for p in paths)
        if paths and abs(total - 1) > 1e-6:
            bad_shares.append(f"{vmta.type} {vmta.id} ({domain}): shares sum to {total}")
print(json.dumps({"walked": walked, "loops": loops, "bad_shares": bad_shares}))
"""


def core_walk(env):
    """The core's own verdict: relays.resolution.delivery_paths on every VirtualMTA (it raises
    on a loop) and each one's shares summing to 1."""
    out = bench_run.manage(env, "shell", "-c", _CORE_WALK, timeout=600)
    return json.loads(out.strip().splitlines()[-1])


def lost(pg, ids=(), relay_ids=()):
    """Records whose create was answered 200 and that are neither in the database nor deleted
    since (a delete leaves an audit entry): `ids` are GreenArrow ids, `relay_ids` Mail Manager
    RelayIds. One sentence each."""
    ids, relay_ids = sorted(set(ids)), sorted(set(relay_ids))
    present = {r[0] for r in pg.sql("SELECT id FROM relays_virtualmta WHERE id = ANY(%s)", [ids])}
    deleted = {
        r[0]
        for r in pg.sql(
            "SELECT record_id FROM relays_auditentry WHERE action = 'delete' "
            "AND record_id = ANY(%s)",
            [ids],
        )
    }
    problems = [
        f"id {i}: answered 200, not in the database" for i in ids if i not in present | deleted
    ]
    present = {
        r[0]
        for r in pg.sql(
            "SELECT relay_id FROM relays_relayserver WHERE relay_id = ANY(%s)", [relay_ids]
        )
    }
    deleted = {
        r[0]
        for r in pg.sql(
            "SELECT before->>'relay_id' FROM relays_auditentry WHERE action = 'delete' "
            "AND record_type = 'relay_server' AND before->>'relay_id' = ANY(%s)",
            [relay_ids],
        )
    }
    problems += [
        f"RelayId {r}: answered 200, not in the database"
        for r in relay_ids
        if r not in present | deleted
    ]
    return problems


def check_nothing_lost(result, pg, ids, relay_ids, *, with_deletes, looked_at=""):
    """The checks each scenario ends with, on `result`: every create answered 200 (`ids`
    GreenArrow ids, `relay_ids` Mail Manager RelayIds) is in the database, or was deleted since
    when the scenario deletes (`with_deletes`), and no record is half-written (`looked_at`
    names what was checked, when the report should say)."""
    missing = lost(pg, ids, relay_ids)
    result.lost = len(missing)
    answered = len(ids) + len(relay_ids)
    result.check(
        "every create answered 200 is in the database"
        + (" or was deleted" if with_deletes else ""),
        f"{answered - len(missing)} of {answered}",
        not missing,
    )
    broken = half_written(pg, with_deletes=with_deletes)
    label = "no record half-written" + (f" ({looked_at})" if looked_at else "")
    result.check(label, len(broken), not broken)
    result.evidence += missing[:10] + broken[:10]
