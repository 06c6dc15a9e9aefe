"""Scenario 1: PostgreSQL stops under a steady stream of GreenArrow and Mail Manager requests.

Each fault (`fast`: pg_ctl stop -m fast; `kill`: SIGKILL to the postmaster) keeps the database
down for a while, then starts it again on the same port and data directory. Expected: GreenArrow
answers 503 `internal_error`, Mail Manager a 5xx that boto3's standard retry mode retries,
/readyz 503; every request gets an answer; the same gunicorn workers serve again within seconds
of the database coming back, without a restart; nothing answered 200 is lost.
"""

import contextlib
import random
import time
import uuid
from dataclasses import dataclass, field

import bodies
import integrity
from stack import App, HarnessError, log
from summary import Result
from traffic import (
    SERVER_ERRORS,
    Crew,
    GreenArrow,
    Names,
    Recorder,
    mailmanager,
    mm_call,
    probe,
    sdk_retries,
)

BASELINE_SECONDS = 3  # steady traffic before each fault
SETTLE_SECONDS = 3  # and after the last recovery
APIS = ("greenarrow", "mailmanager", "readyz")
MM_RETRIED_CODES = {"ServiceUnavailable", "InternalFailure"}
# A frozen database is only noticed at the app's deadline (each answer 10 s, then a reconnect
# bounded by connect_timeout 5 s: relayapi/postgresql/), and a call may queue behind such a
# request on a sync worker: what is promised is an answer before gunicorn's 30 s worker timeout
# would drop the connection. A probe queued like that may see no failure at all.
FREEZE_ANSWER_MAX = 29
FAULT_NAMES = {
    "fast": "stopped (fast)",
    "kill": "postmaster SIGKILLed",
    "freeze": "frozen (SIGSTOP)",
}


@dataclass
class Fault:
    kind: str
    down: float  # when the stop began
    up: float  # when PostgreSQL accepted connections again
    recovered: dict = field(default_factory=dict)  # api -> time of its first 200 after `up`

    def recovery(self, api):
        return self.recovered[api] - self.up if api in self.recovered else None

    def window_end(self, api):
        """Until when a failure of `api` belongs to this fault: its recovery."""
        return self.recovered.get(api, float("inf"))


def _seed(app, ctx, names):
    """A relay through each API, for the GETs of the stream."""
    recorder = Recorder()
    ga = GreenArrow(app.base, ctx.creds.username, ctx.creds.password, recorder)
    made = ga.post("seed", "/relay_servers", bodies.relay_server(names("seed")))
    client = mailmanager(app.base, ctx.creds.key, recorder)
    mm = mm_call(
        client,
        recorder,
        "create_relay",
        ClientToken=str(uuid.uuid4()),
        **bodies.mm_relay(names("seed")),
    )
    if not (made.ok and mm.ok):
        raise HarnessError(f"seeding failed: {made.describe()} / {mm.describe()}")
    return made.data["relay_server"]["id"], mm.data["RelayId"]


def _first_ok_after(recorder, api, after):
    times = [o.ended for o in recorder.of(api) if o.ok and o.ended > after]
    return min(times) if times else None


def run(ctx):
    result = Result("1. database stops under load")
    names = Names("db")
    recorder = Recorder()
    faults = []
    with contextlib.ExitStack() as stack:
        app = App(stack, ctx.env, ctx.tmp, "database", ctx.knobs.workers)
        relay_pk, relay_id = _seed(app, ctx, names)
        ga = GreenArrow(app.base, ctx.creds.username, ctx.creds.password, recorder)

        def ga_step():
            pick = random.random()
            if pick < 0.3:
                ga.get("list", "/relay_servers")
            elif pick < 0.55:
                ga.get("get", f"/relay_servers/{relay_pk}")
            elif pick < 0.75:
                port = {"relay_server": {"destination": {"port": random.randint(1, 65535)}}}
                ga.put("update", f"/relay_servers/{relay_pk}", port)
            else:
                ga.post("create", "/relay_servers", bodies.relay_server(names("ga")))

        def mm_step(client):
            pick = random.random()
            if pick < 0.3:
                mm_call(client, recorder, "get_relay", RelayId=relay_id)
            elif pick < 0.55:
                mm_call(client, recorder, "list_relays", PageSize=20)
            elif pick < 0.75:
                port = random.randint(1, 65535)
                mm_call(client, recorder, "update_relay", RelayId=relay_id, ServerPort=port)
            else:
                params = bodies.mm_relay(names("mm"))
                mm_call(client, recorder, "create_relay", ClientToken=str(uuid.uuid4()), **params)

        crew = Crew()
        for i in range(3):
            crew.add(f"db-ga-{i}", ga_step, pause=0.02)
        for i in range(2):
            # One attempt per call: each answer is seen as the server gave it.
            client = mailmanager(app.base, ctx.creds.key, recorder, max_attempts=1)
            crew.add(f"db-mm-{i}", lambda c=client: mm_step(c), pause=0.02)
        crew.add("db-readyz", lambda: probe(app.base, recorder), pause=0.2)
        workers_before = app.worker_pids()
        crew.start()
        try:
            for kind in ctx.knobs.db_faults:
                crew.stop.wait(BASELINE_SECONDS)
                log(f"database: PostgreSQL {FAULT_NAMES[kind]} for {ctx.knobs.db_down_seconds:g} s")
                down = time.monotonic()
                {"kill": ctx.pg.kill, "freeze": ctx.pg.freeze}.get(kind, ctx.pg.stop_fast)()
                crew.stop.wait(ctx.knobs.db_down_seconds)
                if kind == "freeze":
                    ctx.pg.thaw()
                else:
                    ctx.pg.start_again()
                fault = Fault(kind, down, time.monotonic())
                faults.append(fault)
                log("database: PostgreSQL is up again; waiting for both APIs and /readyz")
                deadline = fault.up + ctx.knobs.recovery_timeout
                while time.monotonic() < deadline and len(fault.recovered) < len(APIS):
                    for api in APIS:
                        seen = _first_ok_after(recorder, api, fault.up)
                        if seen is not None:
                            fault.recovered[api] = seen
                    time.sleep(0.1)
                log(
                    "database: recovered in "
                    + ", ".join(f"{api} {fault.recovery(api) or 'never'}" for api in APIS)
                )
            crew.stop.wait(SETTLE_SECONDS)
        finally:
            stuck = crew.finish()
        workers_after = app.worker_pids()
        app_alive = app.alive()
        errors = app.error_lines()

    _judge(result, ctx, recorder, faults, crew, stuck, workers_before, workers_after, app_alive)
    events = {}
    for entry in errors:
        event = str(entry.get("event"))[:60]
        events[event] = events.get(event, 0) + 1
    result.notes.append(f"app log: {len(errors)} error lines: {events}")
    # While the database is down the app logs why; an unexpected error is something else.
    others = [
        e
        for e in errors
        if any(word in str(e.get("event")) for word in ("unexpected", "Internal Server Error"))
    ]
    result.check(
        "no unexpected error logged (only 'database unavailable' and the like)",
        len(others),
        not others,
    )
    result.evidence += [
        f"{e.get('event')}: {str(e.get('exception', ''))[-800:]}" for e in others[:3]
    ]
    return result


def _judge(result, ctx, recorder, faults, crew, stuck, before, after, app_alive):
    result.requests = recorder.requests()
    result.server_errors = recorder.server_errors()
    result.faults = ", ".join(
        f"PostgreSQL {FAULT_NAMES[f.kind]} {ctx.knobs.db_down_seconds:g} s" for f in faults
    )
    result.check(
        "client threads ran to the end",
        crew.crashes or stuck or "yes",
        not crew.crashes and not stuck,
    )
    result.evidence += crew.crashes

    def fault_of(outcome):
        for fault in faults:
            if outcome.ended >= fault.down and outcome.started < fault.window_end(outcome.api):
                return fault
        return None

    for api in APIS:
        failures = [o for o in recorder.of(api) if not o.ok]
        unanswered = [o for o in failures if o.status is None]
        outside = [o for o in failures if fault_of(o) is None]
        if api == "greenarrow":
            wrong = [o for o in failures if (o.status, o.code) != (503, "internal_error")]
            promise = "GreenArrow failures are all 503 internal_error"
        elif api == "mailmanager":
            wrong = [
                o
                for o in failures
                if o.status not in SERVER_ERRORS
                or o.code not in MM_RETRIED_CODES
                or not sdk_retries(o)
            ]
            promise = "Mail Manager failures are all 5xx ServiceUnavailable/InternalFailure that boto3 retries"
            codes = {}
            for o in failures:
                codes[f"{o.status} {o.code}"] = codes.get(f"{o.status} {o.code}", 0) + 1
            result.notes.append(f"Mail Manager failures by answer: {codes or 'none'}")
        else:
            wrong = [o for o in failures if o.status != 503]
            promise = "/readyz failures are all 503"
        calls = recorder.of(api)
        result.check(promise, f"{len(failures) - len(wrong)} of {len(failures)}", not wrong)
        result.check(
            f"{api}: every request answered (no dropped connection)",
            f"{len(unanswered)} unanswered of {len(calls)}",
            not unanswered,
        )
        result.check(
            f"{api}: no failure outside an outage (none after recovery)", len(outside), not outside
        )
        result.evidence += [o.describe() for o in (wrong + unanswered + outside)[:5]]

    recoveries = []
    for fault in faults:
        for api in APIS:
            # A 503 is only worth something when it comes at once: a client (or a probe) held
            # for 30 s cannot tell a dead database from a slow one.
            held = [
                o.ended - o.started
                for o in recorder.of(api)
                if o.started < fault.up and o.ended > fault.down
            ]
            slowest = max(held, default=0.0)
            bound = FREEZE_ANSWER_MAX if fault.kind == "freeze" else ctx.knobs.answer_max
            result.check(
                f"{fault.kind}: {api} answers within {bound:g} s while the database is down",
                f"slowest {slowest:.2f} s of the {len(held)} calls it was down for",
                held and slowest <= bound,
            )
            in_fault = [o for o in recorder.of(api) if not o.ok and fault_of(o) is fault]
            saw = f"{fault.kind}: {api} saw the outage"
            if fault.kind == "freeze" and api == "readyz":
                result.notes.append(f"{saw}: {len(in_fault)} failed calls (queued probes may not)")
            else:
                result.check(saw, f"{len(in_fault)} failed calls", in_fault)
            seconds = fault.recovery(api)
            recoveries.append(seconds)
            figure = "never" if seconds is None else f"{seconds:.2f} s"
            result.check(
                f"{fault.kind}: {api} answers 200 within {ctx.knobs.recovery_max} s of the database",
                figure,
                seconds is not None and seconds <= ctx.knobs.recovery_max,
            )
    if recoveries and None not in recoveries:
        result.recovery = f"{max(recoveries):.2f}"
    elif recoveries:
        result.recovery = "never"
    result.check(
        "no restart: the same gunicorn master and workers throughout",
        f"{before} -> {after}",
        app_alive and before == after,
    )

    ga_ids = [o.data["relay_server"]["id"] for o in recorder.of("greenarrow", "create") if o.ok]
    mm_ids = [o.data["RelayId"] for o in recorder.of("mailmanager", "create_relay") if o.ok]
    integrity.check_nothing_lost(result, ctx.pg, ga_ids, mm_ids, with_deletes=False)
