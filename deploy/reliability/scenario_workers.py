"""Scenario 2: gunicorn workers are SIGKILLed during a stream of creates on both APIs.

GreenArrow creates relay servers and routing rules (a rule is many rows: base, child, domain
override, domains, targets); boto3 creates relays with a ClientToken, its standard retries on.
A worker is killed while it holds a client connection, several times. Expected: every create
answered 200 is in the database; no record is half-written; every boto3 create ends with a
RelayId, and the same token sent again answers the same RelayId and makes nothing (no
duplicates); gunicorn replaces each worker by itself.
"""

import contextlib
import os
import random
import signal
import threading
import time
import uuid

import bodies
import integrity
from stack import App, HarnessError, log
from summary import Result
from traffic import Crew, GreenArrow, Names, Recorder, mailmanager, mm_call

MM_ATTEMPTS = 3  # boto3's default in standard mode: a killed worker costs a call one of them


def _cut(recorder, ga_creates):
    """(GreenArrow creates, boto3 attempts) that got no answer: cut off by a kill."""
    return (
        sum(1 for _, _, o in list(ga_creates) if o.status is None),
        sum(1 for a in list(recorder.attempts) if a[2] is None),
    )


def _kill(app):
    """SIGKILL a worker serving a request (any worker if none is): (pid, serving, when,
    seconds until gunicorn had forked its replacement, or None)."""
    pid, busy = app.busy_worker()
    if pid is None:
        raise HarnessError("gunicorn has no workers to kill")
    os.kill(pid, signal.SIGKILL)
    killed = time.monotonic()
    replaced = None
    while time.monotonic() < killed + 60:
        pids = app.worker_pids()
        if pid not in pids and len(pids) == app.workers:
            replaced = time.monotonic() - killed
            break
        time.sleep(0.05)
    state = "serving a request" if busy else "idle"
    log(f"workers: SIGKILL worker {pid} ({state}); replaced in {replaced and round(replaced, 2)} s")
    return pid, busy, killed, replaced


def run(ctx):
    result = Result("2. gunicorn workers SIGKILLed")
    names = Names("kill")
    recorder = Recorder()
    ga_creates, mm_creates, kills = [], [], []
    lock = threading.Lock()
    with contextlib.ExitStack() as stack:
        app = App(stack, ctx.env, ctx.tmp, "workers", ctx.knobs.workers)
        ga = GreenArrow(app.base, ctx.creds.username, ctx.creds.password, recorder)
        seeds = [
            ga.post("seed", "/relay_servers", bodies.relay_server(names("target"))),
            ga.post("seed", "/ip_addresses", bodies.ip_address(names("target"), 1)),
        ]
        if not all(s.ok for s in seeds):
            raise HarnessError(f"seeding failed: {[s.describe() for s in seeds]}")
        relay_pk = seeds[0].data["relay_server"]["id"]
        ip_pk = seeds[1].data["ip_address"]["id"]

        def ga_step():
            if random.random() < 0.5:
                name = names("relay")
                outcome = ga.post(
                    "create relay_server", "/relay_servers", bodies.relay_server(name)
                )
                kind = "relay_server"
            else:
                name = names("rule")
                body = bodies.routing_rule(name, [relay_pk, ip_pk], [ip_pk, relay_pk])
                outcome = ga.post("create routing_rule", "/routing_rules", body)
                kind = "routing_rule"
            with lock:
                ga_creates.append((kind, name, outcome))

        def mm_step(client):
            token, params = str(uuid.uuid4()), bodies.mm_relay(names("mm"))
            outcome = mm_call(client, recorder, "create_relay", ClientToken=token, **params)
            with lock:
                mm_creates.append((token, params, outcome))

        crew = Crew()
        for i in range(3):
            crew.add(f"kill-ga-{i}", ga_step)
        for i in range(3):
            client = mailmanager(app.base, ctx.creds.key, recorder, max_attempts=MM_ATTEMPTS)
            crew.add(f"kill-mm-{i}", lambda c=client: mm_step(c))
        crew.start()
        try:
            crew.stop.wait(2)
            # At least `kills` kills, more (up to three times as many) until a request of each
            # API was cut: a run that never cut a boto3 call would prove nothing about retries.
            while len(kills) < 3 * ctx.knobs.kills and not crew.stop.is_set():
                if len(kills) >= ctx.knobs.kills and all(_cut(recorder, ga_creates)):
                    break
                next_kill = time.monotonic() + ctx.knobs.kill_interval
                kills.append(_kill(app))
                crew.stop.wait(max(0.0, next_kill - time.monotonic()))
            crew.stop.wait(2)
        finally:
            stuck = crew.finish()
        app.wait_ready()

        # Every token once more, as a client whose answer was lost would: same RelayId, nothing new.
        replay_recorder = Recorder()
        client = mailmanager(app.base, ctx.creds.key, replay_recorder, max_attempts=MM_ATTEMPTS)
        replays = [
            mm_call(client, replay_recorder, "create_relay", ClientToken=token, **params)
            for token, params, _ in mm_creates
        ]
        errors = app.error_lines()

    _judge(
        result,
        ctx,
        recorder,
        replay_recorder,
        crew,
        stuck,
        ga_creates,
        mm_creates,
        replays,
        kills,
        names,
    )
    # gunicorn's own line for each kill is expected; anything else the app logged is not.
    others = [e for e in errors if "was sent SIGKILL" not in str(e.get("event"))]
    result.check(
        "no error logged but the kills", f"{len(others)} of {len(errors)} lines", not others
    )
    result.evidence += [
        f"{e.get('event')}: {str(e.get('exception', ''))[-800:]}" for e in others[:3]
    ]
    return result


def _judge(
    result,
    ctx,
    recorder,
    replay_recorder,
    crew,
    stuck,
    ga_creates,
    mm_creates,
    replays,
    kills,
    names,
):
    result.requests = recorder.requests() + replay_recorder.requests()
    result.server_errors = recorder.server_errors() + replay_recorder.server_errors()
    result.faults = f"{len(kills)} worker SIGKILLs ({sum(1 for k in kills if k[1])} mid-request)"
    respawns = [k[3] for k in kills]
    result.recovery = "never" if None in respawns else f"{max(respawns, default=0):.2f}"
    result.check(
        "client threads ran to the end",
        crew.crashes or stuck or "yes",
        not crew.crashes and not stuck,
    )
    result.evidence += crew.crashes
    result.check("no 5xx answer", result.server_errors, result.server_errors == 0)
    result.check(
        "gunicorn replaced every killed worker",
        f"{len(kills) - respawns.count(None)} of {len(kills)}",
        kills and None not in respawns,
    )

    cut_ga = [(k, n, o) for k, n, o in ga_creates if o.status is None]
    cut_mm = _cut(recorder, ga_creates)[1]
    result.check(
        "kills cut requests of both APIs in flight",
        f"{len(cut_ga)} GreenArrow creates, {cut_mm} boto3 attempts",
        cut_ga and cut_mm,
    )
    refused = [o for _, _, o in ga_creates if o.status is not None and not o.ok]
    result.check(
        "GreenArrow creates answered are all 200", f"{len(refused)} other answers", not refused
    )
    result.evidence += [o.describe() for o in refused[:5]]

    committed = {
        name
        for (name,) in ctx.pg.sql(
            "SELECT name FROM relays_virtualmta WHERE name = ANY(%s)", [[n for _, n, _ in cut_ga]]
        )
    }
    result.notes.append(
        f"GreenArrow creates cut off by a kill: {len(cut_ga)} ({len(committed)} committed whole "
        "before the kill, the rest not written)"
    )
    ids = [o.data[k]["id"] for k, _, o in ga_creates if o.ok]
    mm_ok = [o for _, _, o in mm_creates if o.ok]
    mm_failed = [o for _, _, o in mm_creates if not o.ok]
    result.check(
        "every boto3 create ends with a RelayId (retries on)",
        f"{len(mm_ok)} of {len(mm_creates)}",
        not mm_failed,
    )
    result.evidence += [o.describe() for o in mm_failed[:5]]
    # A retried create whose relay was made by an earlier (cut) attempt: the audit entry of its
    # creation names another request than the one that answered. Those are the retries the
    # ClientToken saved from making a second relay.
    retried = [o for o in mm_ok if o.attempts > 1]
    made_by = dict(
        ctx.pg.sql(
            "SELECT r.relay_id, a.request_id FROM relays_relayserver r JOIN relays_auditentry a "
            "ON a.record_id = r.virtualmta_ptr_id AND a.action = 'create' "
            "WHERE r.relay_id = ANY(%s)",
            [[o.data["RelayId"] for o in retried]],
        )
    )
    saved = [
        o
        for o in retried
        if made_by.get(o.data["RelayId"]) != o.data["ResponseMetadata"]["RequestId"]
    ]
    result.notes.append(
        f"boto3 creates answered after a retry: {len(retried)}, of which {len(saved)} had been "
        "committed by the attempt a kill cut off (the retry got that RelayId back)"
    )

    integrity.check_nothing_lost(
        result,
        ctx.pg,
        ids,
        [o.data["RelayId"] for o in mm_ok],
        with_deletes=False,
        looked_at="base/child rows, routes, audit entry, ClientToken",
    )

    # Duplicates: the same token must answer the same RelayId, and one relay per token.
    changed = [
        f"ClientToken {token}: first {first.data['RelayId']}, again {again.data.get('RelayId') if again.ok else again.describe()}"
        for (token, _, first), again in zip(mm_creates, replays, strict=True)
        if first.ok and (not again.ok or again.data["RelayId"] != first.data["RelayId"])
    ]
    result.check(
        "the same ClientToken answers the same RelayId again",
        f"{len(changed)} differ of {len(replays)}",
        not changed,
    )
    tokens = {t for t, _, _ in mm_creates}
    relays = ctx.pg.sql(
        "SELECT count(*), count(DISTINCT t.token) FROM relays_relayserver r JOIN relays_virtualmta v "
        "ON v.id = r.virtualmta_ptr_id LEFT JOIN relays_clienttoken t ON t.relay_id = r.relay_id "
        "WHERE v.name LIKE %s",
        [f"{names.prefix}-mm-%"],
    )[0]
    result.check(
        "one relay per ClientToken (no duplicates from retries)",
        f"{relays[0]} relays, {relays[1]} tokens, {len(tokens)} sent",
        relays[0] == relays[1] == len(tokens),
    )
    result.evidence += changed[:10]
