"""Scenario 4: clients send wrong passwords while someone else uses the API.

A password check is a PBKDF2 hash (the production hasher here: DEBUG off, relayapi.settings),
and wrong passwords are never remembered: before relays/password_slots.py, a few such clients
from a few addresses, under every lockout limit, kept every core hashing and made the whole API
slow. Here a probe from 127.0.0.2 measures GET /healthz and an authenticated GreenArrow GET
(credentials it has used before, so each worker remembers them), first alone, then while 4 and
then 16 attackers send wrong passwords, each a process of its own with its own address (client
sockets bound to 127.0.0.10, .11, ...; gunicorn on TCP trusts no proxy, so each address counts
by itself). Each attempt tries a new made-up username: no pair or account lock stops them, and
fewer attempts than the address limit fit in a phase, so the hashing bound is all that holds
them back. An attacker sends its next attempt as soon as it has an answer, and after a 429 waits
the Retry-After the server asked for, as HTTP clients with retries do (attacker.py; with
RELIABILITY_PASSWORD_ATTACK=flood it never waits, =plain it floods without credentials: see
RELIABILITY.md for what those measure). Expected: both medians within 2x of idle in every phase;
the probe's GETs all 200; the attackers get 401 or 429 only.

A phase lasts RELIABILITY_PASSWORD_SECONDS (15); RELIABILITY_ATTACKERS (4,16) lists the phases.
"""

import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import bodies
from attacker import GA, basic, get
from stack import App, HarnessError, log
from summary import Result
from traffic import GreenArrow, Names, Recorder

ATTACKER = Path(__file__).resolve().parent / "attacker.py"
PROBE_ADDRESS = "127.0.0.2"
PROBE_PAUSE = 0.05  # between probe requests: the probe measures, it does not add load
SETTLE_SECONDS = 2  # after a phase, for the last attempts to drain
MAX_RATIO = 2.0


def attacker_address(n):
    return f"127.0.0.{10 + n}"


class Phase:
    """What one phase saw: the probe's (kind, status, seconds) and the attackers' statuses."""

    def __init__(self, name, attackers):
        self.name, self.attackers = name, attackers
        self.probe, self.attempts = [], {}

    def p50_ms(self, kind):
        return self.percentile_ms(kind, 50)

    def percentile_ms(self, kind, n):
        times = sorted(s for k, status, s in self.probe if k == kind and status == 200)
        if not times:
            return float("inf")
        if n == 50:
            return statistics.median(times) * 1000
        return times[min(len(times) - 1, int(len(times) * n / 100))] * 1000

    def probe_statuses(self, kind):
        counts = {}
        for k, status, _ in self.probe:
            if k == kind:
                counts[status] = counts.get(status, 0) + 1
        return counts


def _run_phase(app, phase, seconds, get_path, auth, mode):
    attackers = [
        subprocess.Popen(
            [
                sys.executable,
                ATTACKER,
                str(app.port),
                attacker_address(n),
                str(seconds),
                mode,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in phase.attackers
    ]
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for kind, path, headers in (("healthz", "/healthz", None), ("get", get_path, auth)):
                status, took, _ = get(app.port, path, PROBE_ADDRESS, headers)
                phase.probe.append((kind, status, took))
                time.sleep(PROBE_PAUSE)
        for attacker in attackers:
            out, _ = attacker.communicate(timeout=60)
            for status, count in json.loads(out or "{}").items():
                key = int(status) if status != "None" else None
                phase.attempts[key] = phase.attempts.get(key, 0) + count
    finally:
        for attacker in attackers:
            if attacker.poll() is None:
                attacker.kill()
                attacker.wait(10)
    time.sleep(SETTLE_SECONDS)


def run(ctx):
    result = Result("4. wrong passwords from many addresses")
    seconds = ctx.knobs.password_seconds
    with contextlib.ExitStack() as stack:
        app = App(stack, ctx.env, ctx.tmp, "passwords", ctx.knobs.workers)
        recorder = Recorder()
        ga = GreenArrow(app.base, ctx.creds.username, ctx.creds.password, recorder)
        seeded = ga.post("seed", "/relay_servers", bodies.relay_server(Names("pw")("relay")))
        if not seeded.ok:
            raise HarnessError(f"seeding failed: {seeded.describe()}")
        get_path = f"{GA}/relay_servers/{seeded.data['relay_server']['id']}"
        auth = basic(ctx.creds.username, ctx.creds.password)
        # Every worker checks the probe's password once and remembers it (gunicorn hands each
        # connection to whichever worker accepts it first: many requests reach them all).
        warm = [get(app.port, get_path, PROBE_ADDRESS, auth)[0] for _ in range(10 * app.workers)]
        if set(warm) != {200}:
            raise HarnessError(f"passwords: warm-up answers {sorted(set(warm), key=str)}")

        phases = [Phase("idle", [])]
        first = 0
        for count in ctx.knobs.attackers:
            phases.append(Phase(f"{count} attackers", range(first, first + count)))
            first += count  # fresh addresses each phase: no address limit carried over
        for phase in phases:
            log(f"passwords: {phase.name} for {seconds:g} s")
            _run_phase(app, phase, seconds, get_path, auth, ctx.knobs.password_attack)
            log(
                f"passwords: {phase.name}: /healthz p50 {phase.p50_ms('healthz'):.1f} ms, "
                f"GET p50 {phase.p50_ms('get'):.1f} ms, attempts {phase.attempts}"
            )
        errors = app.error_lines()
    _judge(result, phases, errors, ctx)
    return result


def _judge(result, phases, errors, ctx):
    idle, attacked = phases[0], phases[1:]
    result.requests = sum(len(p.probe) + sum(p.attempts.values()) for p in phases)
    result.server_errors = sum(
        1 for p in phases for _, status, _ in p.probe if status is not None and status >= 500
    ) + sum(
        count
        for p in phases
        for status, count in p.attempts.items()
        if status is not None and status >= 500
    )
    result.faults = (
        f"{', then '.join(str(len(p.attackers)) for p in attacked)} clients "
        + {
            "retry": "sending wrong passwords",
            "flood": "flooding wrong passwords (no wait after 429)",
            "plain": "flooding requests without credentials",
        }[ctx.knobs.password_attack]
        + f", {ctx.knobs.password_seconds:g} s each"
    )
    for kind, label in (("healthz", "/healthz"), ("get", "authenticated GET")):
        base = idle.p50_ms(kind)
        for phase in attacked:
            p50 = phase.p50_ms(kind)
            result.check(
                f"{label} p50 with {phase.name} within {MAX_RATIO:g}x of idle",
                f"{p50:.1f} ms vs {base:.1f} ms idle ({p50 / base:.2f}x)",
                p50 <= MAX_RATIO * base,
            )
    probe_failures = {
        f"{p.name} {kind}": p.probe_statuses(kind)
        for p in phases
        for kind in ("healthz", "get")
        if set(p.probe_statuses(kind)) != {200}
    }
    result.check(
        "every probe request answered 200 (remembered credentials need no hashing slot)",
        probe_failures or "yes",
        not probe_failures,
    )
    odd = {p.name: p.attempts for p in attacked if not set(p.attempts) <= {401, 429}}
    result.check("attackers get 401 or 429 only", odd or "yes", not odd)
    result.check("no error logged", f"{len(errors)} lines", not errors)
    result.evidence += [
        f"{e.get('event')}: {str(e.get('exception', ''))[-800:]}" for e in errors[:3]
    ]
    for phase in phases:
        attempts = phase.attempts
        if not phase.attackers:
            attackers = "no attackers"
        elif ctx.knobs.password_attack == "plain":
            attackers = f"{sum(attempts.values())} requests without credentials ({attempts})"
        else:
            attackers = (
                f"{sum(attempts.values())} wrong-password attempts: {attempts.get(401, 0)} "
                f"checked (401), {attempts.get(429, 0)} refused without a hash (429)"
            )
        result.notes.append(
            f"{phase.name}: /healthz p50 {phase.p50_ms('healthz'):.1f} ms "
            f"(p90 {phase.percentile_ms('healthz', 90):.1f}), authenticated GET p50 "
            f"{phase.p50_ms('get'):.1f} ms (p90 {phase.percentile_ms('get', 90):.1f}), "
            f"{len(phase.probe)} probe requests; {attackers}"
        )
