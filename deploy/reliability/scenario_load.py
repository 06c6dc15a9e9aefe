"""Scenario 3: a long mixed load on both APIs, then the database is checked against the APIs.

Client threads (16 by default, three GreenArrow for each Mail Manager one) read, create, update,
redirect, route, pause and delete IP addresses, relay servers and routing rules, and now and then
try to close a delivery loop on purpose. Expected: no 5xx and no dropped connection; only the
refusals a concurrent mix can cause (a loop, a reference deleted meanwhile, a delete of a record
in use, a record gone); no delivery loop in the final database, by a graph walk of its own and by
the core's delivery_paths; list totals of both APIs equal to the rows; nothing answered 200
lost or half-written; every worker's RSS within the tolerance of its size after the warm-up.
"""

import contextlib
import random
import threading
import time
import uuid
from urllib.parse import quote

import bodies
import integrity
from stack import App, HarnessError, log
from summary import Result
from traffic import SERVER_ERRORS, Crew, GreenArrow, Names, Recorder, mailmanager, mm_call

PATHS = {
    "relay_server": "relay_servers",
    "ip_address": "ip_addresses",
    "routing_rule": "routing_rules",
}
MAX_LIVE = 300  # records the mix keeps alive at most: past it, creates turn into deletes
RSS_SAMPLE_SECONDS = 30
# Refusals a concurrent mix legitimately gets (anything else fails the run):
GA_REFUSALS = {
    (400, "validation_failed"): (
        "delivery loop",  # a loop refused (on purpose or by chance)
        "hand-offs",  # a path longer than 16 hand-offs refused
        "refers to no VirtualMTA",  # a target deleted meanwhile
        "must not point at the VirtualMTA itself",
        "is already used by",  # a contested name taken (by the check or the constraint)
    ),
    (404, "not_found"): ("",),  # deleted meanwhile
    (409, "validation_failed"): ("is used by", "is the default VirtualMTA"),  # delete refused
}
MM_REFUSALS = {(404, "ResourceNotFoundException"), (409, "ConflictException")}
# A few names every thread keeps trying to take (in any case): concurrent creates and renames
# race for them, so the name constraint, not only the check before it, refuses some.
CONTESTED = [f"Contested-{n}" for n in range(6)]


def contested():
    name = random.choice(CONTESTED)
    return random.choice([name, name.lower(), name.upper()])


class Registry:
    """What the clients know exists: {id: type}, the RelayIds, and the references they wrote
    (for deliberate loop attempts). Shared by every thread."""

    def __init__(self):
        self.records, self.relay_ids, self.edges = {}, set(), {}
        self.lock = threading.Lock()

    def add(self, pk, vmta_type):
        with self.lock:
            self.records[pk] = vmta_type

    def remove(self, pk):
        with self.lock:
            self.records.pop(pk, None)
            self.edges.pop(pk, None)

    def pick(self, *types):
        with self.lock:
            found = [pk for pk, t in self.records.items() if not types or t in types]
        return random.choice(found) if found else None

    def type_of(self, pk):
        with self.lock:
            return self.records.get(pk)

    def full(self):
        with self.lock:
            return len(self.records) >= MAX_LIVE

    def set_edges(self, pk, targets):
        with self.lock:
            self.edges[pk] = set(targets)

    def edge(self):
        with self.lock:
            pairs = [(a, b) for a, targets in self.edges.items() for b in targets]
        return random.choice(pairs) if pairs else None

    def relay_id(self):
        with self.lock:
            return random.choice(sorted(self.relay_ids)) if self.relay_ids else None


class Mix:
    """The operations, each one call, chosen by weight."""

    def __init__(self, ga, registry, names):
        self.ga, self.reg, self.names = ga, registry, names
        self.ip_numbers = iter(range(2, 10**7))
        self.ga_ops = [
            (self.list_type, 6),
            (self.list_virtual_mtas, 5),
            (self.get_one, 10),
            (self.used_by, 3),
            (self.get_default, 1),
            (self.create_relay, 4),
            (self.create_ip, 3),
            (self.create_rule, 3),
            (self.update_port, 3),
            (self.set_redirect, 4),
            (self.clear_redirect, 2),
            (self.route_rule, 3),
            (self.pause_ip, 1),
            (self.rename, 2),
            (self.delete, 5),
            (self.close_loop, 3),
            (self.set_default, 0.3),
        ]

    def step(self):
        ops, weights = zip(*self.ga_ops, strict=True)
        random.choices(ops, weights)[0]()

    def _gone(self, outcome, pk):
        if outcome.status == 404:
            self.reg.remove(pk)
        return outcome

    # --- reads ---
    def list_type(self):
        vmta_type = random.choice(list(PATHS))
        self.ga.get("list", f"/{PATHS[vmta_type]}?page={random.choice([0, 0, 1])}")

    def list_virtual_mtas(self):
        outcome = self.ga.get("list virtual_mtas", f"/virtual_mtas?page={random.randint(0, 3)}")
        if outcome.ok:
            for item in outcome.data["virtual_mtas"]:
                self.reg.add(item["id"], item["type"])

    def get_one(self):
        pk = self.reg.pick()
        vmta_type = self.reg.type_of(pk)
        if vmta_type is not None:
            self._gone(self.ga.get("get", f"/{PATHS[vmta_type]}/{pk}"), pk)

    def used_by(self):
        pk = self.reg.pick()
        if pk is not None:
            self._gone(self.ga.get("used_by", f"/virtual_mtas/{pk}/used_by"), pk)

    def get_default(self):
        self.ga.get("get default", "/virtual_mtas/default")

    # --- creates ---
    def _created(self, outcome, vmta_type, targets=()):
        if outcome.ok:
            pk = outcome.data[vmta_type]["id"]
            self.reg.add(pk, vmta_type)
            if targets:
                self.reg.set_edges(pk, targets)

    def create_relay(self):
        if self.reg.full():
            return self.delete()
        redirect = self.reg.pick() if random.random() < 0.4 else None
        name = contested() if random.random() < 0.2 else self.names("relay")
        body = bodies.relay_server(name, redirect)
        self._created(
            self.ga.post("create", "/relay_servers", body),
            "relay_server",
            [redirect] if redirect else (),
        )

    def create_ip(self):
        if self.reg.full():
            return self.delete()
        redirect = self.reg.pick() if random.random() < 0.3 else None
        body = bodies.ip_address(self.names("ip"), next(self.ip_numbers), redirect)
        self._created(
            self.ga.post("create", "/ip_addresses", body),
            "ip_address",
            [redirect] if redirect else (),
        )

    def create_rule(self):
        if self.reg.full():
            return self.delete()
        default = {self.reg.pick() for _ in range(random.randint(1, 3))} - {None}
        override = {self.reg.pick() for _ in range(random.randint(0, 2))} - {None}
        if not default:
            return None
        body = bodies.routing_rule(self.names("rule"), sorted(default), sorted(override))
        self._created(
            self.ga.post("create", "/routing_rules", body), "routing_rule", default | override
        )

    # --- updates ---
    def update_port(self):
        pk = self.reg.pick("relay_server")
        if pk is not None:
            body = {"relay_server": {"destination": {"port": random.randint(1, 65535)}}}
            self._gone(self.ga.put("update", f"/relay_servers/{pk}", body), pk)

    def _redirect(self, pk, target):
        vmta_type = self.reg.type_of(pk)
        if vmta_type not in ("relay_server", "ip_address"):
            return None
        body = {vmta_type: {"redirect": None if target is None else {"id": target}}}
        outcome = self._gone(self.ga.put("redirect", f"/{PATHS[vmta_type]}/{pk}", body), pk)
        if outcome.ok:
            self.reg.set_edges(pk, [] if target is None else [target])
        return outcome

    def set_redirect(self):
        pk, target = self.reg.pick("relay_server", "ip_address"), self.reg.pick()
        if pk is not None and target is not None and pk != target:
            self._redirect(pk, target)

    def clear_redirect(self):
        pk = self.reg.pick("relay_server", "ip_address")
        if pk is not None:
            self._redirect(pk, None)

    def _route(self, pk, targets):
        body = {"routing_rule": {"default": {"deliver_through": bodies.targets(sorted(targets))}}}
        outcome = self._gone(self.ga.put("route", f"/routing_rules/{pk}", body), pk)
        if outcome.ok:
            self.reg.set_edges(pk, targets)
        return outcome

    def route_rule(self):
        pk = self.reg.pick("routing_rule")
        targets = {self.reg.pick() for _ in range(random.randint(1, 3))} - {None, pk}
        if pk is not None and targets:
            self._route(pk, targets)

    def rename(self):
        pk = self.reg.pick()
        vmta_type = self.reg.type_of(pk)
        if vmta_type is not None:
            body = {vmta_type: {"name": contested() if random.random() < 0.7 else self.names("re")}}
            self._gone(self.ga.put("rename", f"/{PATHS[vmta_type]}/{pk}", body), pk)

    def pause_ip(self):
        pk = self.reg.pick("ip_address")
        if pk is not None:
            body = {"ip_address": {"delivery_paused": random.random() < 0.5}}
            self._gone(self.ga.put("pause", f"/ip_addresses/{pk}", body), pk)

    def close_loop(self):
        """b -> a where the clients wrote a -> b: a loop the API must refuse (unless a -> b was
        changed meanwhile)."""
        edge = self.reg.edge()
        if edge is None:
            return
        a, b = edge
        if self.reg.type_of(b) == "routing_rule":
            self._route(b, {a})
        elif self.reg.type_of(b) is not None:
            self._redirect(b, a)

    def set_default(self):
        target = self.reg.pick() if random.random() < 0.5 else None
        body = {"virtual_mta": None if target is None else {"id": target}}
        self.ga.put("set default", "/virtual_mtas/default", body)

    def delete(self):
        pk = self.reg.pick()
        vmta_type = self.reg.type_of(pk)
        if vmta_type is None:
            return
        outcome = self.ga.delete("delete", f"/{PATHS[vmta_type]}/{pk}")
        if outcome.ok or outcome.status == 404:
            self.reg.remove(pk)


class MailManagerMix:
    def __init__(self, client, recorder, registry, names):
        self.client, self.rec, self.reg, self.names = client, recorder, registry, names
        self.ops = [
            (self.create, 3),
            (self.get, 4),
            (self.list, 3),
            (self.update, 2),
            (self.rename, 1),
            (self.delete, 2),
        ]

    def step(self):
        ops, weights = zip(*self.ops, strict=True)
        random.choices(ops, weights)[0]()

    def _call(self, op, **params):
        return mm_call(self.client, self.rec, op, **params)

    def _gone(self, outcome, relay_id):
        if outcome.status == 404:
            with self.reg.lock:
                self.reg.relay_ids.discard(relay_id)
        return outcome

    def create(self):
        if self.reg.full():
            return self.delete()
        params = bodies.mm_relay(contested() if random.random() < 0.2 else self.names("mm"))
        outcome = self._call("create_relay", ClientToken=str(uuid.uuid4()), **params)
        if outcome.ok:
            with self.reg.lock:
                self.reg.relay_ids.add(outcome.data["RelayId"])
        return outcome

    def get(self):
        relay_id = self.reg.relay_id()
        if relay_id:
            self._gone(self._call("get_relay", RelayId=relay_id), relay_id)

    def list(self):
        outcome = self._call("list_relays", PageSize=50)
        if outcome.ok and outcome.data.get("NextToken") and random.random() < 0.5:
            outcome = self._call("list_relays", PageSize=50, NextToken=outcome.data["NextToken"])
        if outcome.ok:
            with self.reg.lock:
                self.reg.relay_ids.update(r["RelayId"] for r in outcome.data["Relays"])

    def update(self):
        relay_id = self.reg.relay_id()
        if relay_id:
            port = random.randint(1, 65535)
            self._gone(self._call("update_relay", RelayId=relay_id, ServerPort=port), relay_id)

    def rename(self):
        relay_id = self.reg.relay_id()
        if relay_id:
            self._gone(
                self._call("update_relay", RelayId=relay_id, RelayName=contested()), relay_id
            )

    def delete(self):
        relay_id = self.reg.relay_id()
        if relay_id:
            outcome = self._call("delete_relay", RelayId=relay_id)
            if outcome.ok or outcome.status == 404:
                with self.reg.lock:
                    self.reg.relay_ids.discard(relay_id)


def _seed(ga, registry, names):
    for number in range(10):
        created = ga.post("create", "/ip_addresses", bodies.ip_address(names("ip"), 10**7 + number))
        if not created.ok:
            raise HarnessError(f"seeding failed: {created.describe()}")
        registry.add(created.data["ip_address"]["id"], "ip_address")
    for _ in range(10):
        created = ga.post("create", "/relay_servers", bodies.relay_server(names("relay")))
        if not created.ok:
            raise HarnessError(f"seeding failed: {created.describe()}")
        registry.add(created.data["relay_server"]["id"], "relay_server")


def run(ctx):
    knobs = ctx.knobs
    result = Result("3. mixed load")
    names = Names("load")
    recorder, registry = Recorder(), Registry()
    samples = []  # (seconds into the measured load, {pid: MiB})
    with contextlib.ExitStack() as stack:
        app = App(stack, ctx.env, ctx.tmp, "load", knobs.workers)
        ga = GreenArrow(app.base, ctx.creds.username, ctx.creds.password, recorder)
        _seed(ga, registry, names)
        crew = Crew()
        mm_threads = max(1, knobs.threads // 4)
        for i in range(knobs.threads - mm_threads):
            crew.add(f"load-ga-{i}", Mix(ga, registry, names).step)
        for i in range(mm_threads):
            client = mailmanager(app.base, ctx.creds.key, recorder, max_attempts=1)
            crew.add(f"load-mm-{i}", MailManagerMix(client, recorder, registry, names).step)
        log(f"load: {knobs.threads} client threads; warm-up {knobs.warmup_seconds} s")
        crew.start()
        try:
            crew.stop.wait(knobs.warmup_seconds)
            start, baseline = time.monotonic(), app.rss()
            warm_requests = recorder.requests()
            samples.append((0, baseline))
            log(f"load: measuring for {knobs.load_seconds} s; workers' RSS {_mib(baseline)}")
            end = start + knobs.load_seconds
            while not crew.stop.is_set() and time.monotonic() < end:
                crew.stop.wait(min(RSS_SAMPLE_SECONDS, max(0.0, end - time.monotonic())))
                samples.append((round(time.monotonic() - start), app.rss()))
                log(
                    f"load: {samples[-1][0]} s, {recorder.requests()} requests, RSS {_mib(samples[-1][1])}"
                )
        finally:
            stuck = crew.finish()
        measured = time.monotonic() - start
        totals = _api_totals(ga, mailmanager(app.base, ctx.creds.key, Recorder(), max_attempts=3))
        errors = app.error_lines()
        alive = app.alive()

    _judge(result, ctx, recorder, crew, stuck, samples, totals, alive)
    result.notes.append(
        f"{recorder.requests() - warm_requests} requests in the {measured:.0f} s measured "
        f"({(recorder.requests() - warm_requests) / measured:.1f}/s), after a "
        f"{knobs.warmup_seconds} s warm-up; {knobs.workers} gunicorn workers"
    )
    result.check("no error logged by the app", len(errors), not errors)
    result.evidence += [
        f"{e.get('event')}: {str(e.get('exception', ''))[-800:]}" for e in errors[:3]
    ]
    return result


def _mib(rss):
    return ", ".join(f"{pid}: {mib:.1f} MiB" for pid, mib in sorted(rss.items()))


def _api_totals(ga, client):
    """What each API says there is: the list totals, and the records its pages hold."""
    totals = {}
    for vmta_type, path in [*PATHS.items(), ("all", "virtual_mtas")]:
        first = ga.get("count", f"/{path}")
        if not first.ok:
            totals[vmta_type] = (first.describe(), None)
            continue
        key = path
        items, page = list(first.data[key]), first.data
        while page["pagination"]["next_page_token"]:
            token = quote(page["pagination"]["next_page_token"], safe="")
            following = ga.get("count", f"/{path}?page_token={token}")
            if not following.ok:
                items = None
                break
            page = following.data
            items += page[key]
        totals[vmta_type] = (
            first.data["pagination"]["num_records"],
            None if items is None else len(items),
        )
    relay_ids = []
    for page in client.get_paginator("list_relays").paginate(PaginationConfig={"PageSize": 50}):
        relay_ids += [r["RelayId"] for r in page["Relays"]]
    totals["mailmanager"] = relay_ids
    return totals


def _judge(result, ctx, recorder, crew, stuck, samples, totals, alive):
    knobs = ctx.knobs
    result.requests = recorder.requests()
    result.server_errors = recorder.server_errors()
    result.faults = f"none ({knobs.threads} threads, {knobs.warmup_seconds}+{knobs.load_seconds} s)"
    result.check(
        "client threads ran to the end",
        crew.crashes or stuck or "yes",
        not crew.crashes and not stuck,
    )
    result.evidence += crew.crashes
    result.check("no 5xx answer", result.server_errors, result.server_errors == 0)
    five = [o for o in recorder.outcomes if o.status in SERVER_ERRORS]
    result.evidence += [o.describe() for o in five[:5]]
    unanswered = [o for o in recorder.outcomes if o.status is None]
    result.check("every request answered (no dropped connection)", len(unanswered), not unanswered)
    result.evidence += [o.describe() for o in unanswered[:5]]

    unexpected, refusals = [], {}
    for o in recorder.outcomes:
        if o.ok or o.status is None or o.status in SERVER_ERRORS:
            continue
        if o.api == "greenarrow":
            allowed = GA_REFUSALS.get((o.status, o.code), ())
            reason = next((r for r in allowed if r in o.answer), None)
        else:
            reason = o.code if (o.status, o.code) in MM_REFUSALS else None
        if reason is None:
            unexpected.append(o)
        else:
            label = f"{o.api} {o.status} {reason or o.code}".strip()
            refusals[label] = refusals.get(label, 0) + 1
    result.check(
        "only the refusals a concurrent mix causes (4xx)",
        f"{len(unexpected)} others",
        not unexpected,
    )
    result.evidence += [o.describe() for o in unexpected[:10]]
    result.notes.append(f"refusals: {refusals}")
    raced = sum(1 for o in recorder.outcomes if "already used by another VirtualMTA" in o.answer)
    result.notes.append(
        f"names refused by the database constraint (a race the check before it lost): {raced}"
    )
    loops_refused = sum(n for label, n in refusals.items() if "delivery loop" in label)
    result.check("delivery loops attempted and refused", loops_refused, loops_refused > 0)

    cycles, depth = integrity.loops_and_depth(ctx.pg)
    result.check(
        "no delivery loop in the database (graph walk)", f"{len(cycles)} cycles", not cycles
    )
    result.evidence += [f"cycle: {' -> '.join(map(str, c))}" for c in cycles[:5]]
    result.check(
        "no delivery path longer than 16 hand-offs",
        f"longest {depth}",
        depth <= integrity.MAX_DELIVERY_HOPS,
    )
    walk = integrity.core_walk(ctx.env)
    result.check(
        "relays.resolution.delivery_paths walks every VirtualMTA (no loop, shares sum to 1)",
        f"{walk['walked']} walks, {len(walk['loops'])} loops, {len(walk['bad_shares'])} bad shares",
        not walk["loops"] and not walk["bad_shares"] and walk["walked"] > 0,
    )
    result.evidence += walk["loops"][:5] + walk["bad_shares"][:5]

    rows = integrity.row_counts(ctx.pg)
    rows["all"] = sum(rows.values())
    for vmta_type, (total, paged) in ((t, v) for t, v in totals.items() if t != "mailmanager"):
        result.check(
            f"GreenArrow {vmta_type} list total and pages = database rows",
            f"total {total}, pages {paged}, rows {rows[vmta_type]}",
            total == paged == rows[vmta_type],
        )
    db_relay_ids = {r[0] for r in ctx.pg.sql("SELECT relay_id FROM relays_relayserver")}
    listed = totals["mailmanager"]
    result.check(
        "Mail Manager ListRelays pages = database relays",
        f"{len(listed)} listed ({len(set(listed))} distinct), {len(db_relay_ids)} rows",
        len(listed) == len(set(listed)) and set(listed) == db_relay_ids,
    )

    ids = [o.data[k]["id"] for o in recorder.of("greenarrow", "create") if o.ok for k in o.data]
    relay_ids = [o.data["RelayId"] for o in recorder.of("mailmanager", "create_relay") if o.ok]
    integrity.check_nothing_lost(result, ctx.pg, ids, relay_ids, with_deletes=True)

    _judge_memory(result, knobs, samples, alive)


def _judge_memory(result, knobs, samples, alive):
    baseline, final = samples[0][1], samples[-1][1]
    result.check(
        "gunicorn and every worker alive throughout (no worker replaced)",
        f"{sorted(baseline)} -> {sorted(final)}",
        alive and sorted(baseline) == sorted(final),
    )
    for pid, start in sorted(baseline.items()):
        end = final.get(pid)
        if end is None:
            continue
        growth = end / start - 1
        result.check(
            f"worker {pid} RSS within {knobs.rss_tolerance:.0%} of its size after warm-up",
            f"{start:.1f} -> {end:.1f} MiB ({growth:+.1%})",
            abs(growth) <= knobs.rss_tolerance,
        )
    trend = "; ".join(
        f"{t} s: " + ", ".join(f"{m:.1f}" for _, m in sorted(r.items())) for t, r in samples
    )
    result.notes.append(f"worker RSS (MiB) over the measured load: {trend}")
