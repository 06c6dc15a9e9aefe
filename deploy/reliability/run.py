"""`make reliability`: RelayAPI under scripted faults, on the production stack, on 127.0.0.1.

Starts a throwaway PostgreSQL (deploy/pg-temp.sh), migrates it, creates a superuser and a Mail
Manager access key, and runs each scenario against a gunicorn of its own (deploy/gunicorn.conf.py,
DEBUG off), with clients of both APIs (GreenArrow over HTTP Basic, boto3 for Mail Manager):

1. database: PostgreSQL stopped under load (fast shutdown, then a SIGKILLed postmaster), started
   again on the same port and data; 503s while it is down, recovery without a restart
   (scenario_database.py);
2. workers: gunicorn workers SIGKILLed mid-request during creates; nothing answered is lost or
   half-written, ClientToken retries make no duplicates (scenario_workers.py);
3. load: a long mixed load on both APIs; no 5xx, no delivery loop, counts that agree, workers'
   memory flat (scenario_load.py);
4. passwords: 4, then 16 clients send wrong passwords from addresses of their own; /healthz and
   an authenticated GET stay within 2x of their idle medians (scenario_passwords.py).

Prints a Markdown summary (a table, then each expectation met or not, with the requests and log
lines behind a failure). Whatever happens, everything it started is stopped, and the whole run is
bounded by an alarm. Exit status: 0 when every expectation is met, 1 when one is not, 2 when the
harness itself failed.

Knobs (environment): RELIABILITY_SCENARIOS (database,workers,load,passwords), RELIABILITY_WORKERS (3),
RELIABILITY_DB_FAULTS (fast,kill; also freeze: SIGSTOP, a database that hangs, where calls
are answered before gunicorn's timeout rather than at once; give it RELIABILITY_DB_DOWN_SECONDS=20),
RELIABILITY_DB_DOWN_SECONDS (10), RELIABILITY_RECOVERY_MAX_SECONDS (10),
RELIABILITY_ANSWER_MAX_SECONDS (5: the longest a call may wait for its answer while the database
is down), RELIABILITY_KILLS (4), RELIABILITY_KILL_INTERVAL (3),
RELIABILITY_LOAD_SECONDS (180), RELIABILITY_WARMUP_SECONDS (30), RELIABILITY_THREADS (16),
RELIABILITY_RSS_TOLERANCE (0.10), RELIABILITY_PASSWORD_SECONDS (15, each phase of scenario 4),
RELIABILITY_ATTACKERS (4,16: its phases), RELIABILITY_PASSWORD_ATTACK (retry: its attackers
wait Retry-After after a 429; flood: they never wait; plain: they flood without credentials,
for comparison), RELIABILITY_SEED (random), RELIABILITY_OUTPUT (a file
for the summary too; none by default). The app's own settings pass through from the environment:
`DATABASE_POOL=1 make reliability` runs it on psycopg's connection pool. A quick try:
RELIABILITY_LOAD_SECONDS=20 RELIABILITY_WARMUP_SECONDS=5 RELIABILITY_DB_FAULTS=fast make reliability
"""

import contextlib
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import scenario_database
import scenario_load
import scenario_passwords
import scenario_workers
import summary
from stack import STARTED, VENV_BIN, BenchError, log, prepare, report

SCENARIOS = {
    "database": scenario_database.run,
    "workers": scenario_workers.run,
    "load": scenario_load.run,
    "passwords": scenario_passwords.run,
}


def _env(name, default, kind=int):
    raw = os.environ.get(f"RELIABILITY_{name}") or str(default)
    try:
        return kind(raw)
    except ValueError:
        raise BenchError(f"RELIABILITY_{name}={raw!r} is not a {kind.__name__}") from None


def _names(name, default, allowed):
    values = [v.strip() for v in _env(name, default, str).split(",") if v.strip()]
    unknown = [v for v in values if v not in allowed]
    if unknown or not values:
        raise BenchError(f"RELIABILITY_{name}: {unknown or 'empty'}; choose from {sorted(allowed)}")
    return values


@dataclass(frozen=True)
class Knobs:
    scenarios: list
    workers: int
    db_faults: list
    db_down_seconds: float
    recovery_max: float
    answer_max: float
    recovery_timeout: float
    kills: int
    kill_interval: float
    load_seconds: float
    warmup_seconds: float
    threads: int
    rss_tolerance: float
    password_seconds: float
    attackers: list
    password_attack: str
    seed: int
    output: str

    @classmethod
    def from_env(cls):
        knobs = cls(
            scenarios=_names("SCENARIOS", "database,workers,load,passwords", SCENARIOS),
            workers=_env("WORKERS", 3),
            db_faults=_names("DB_FAULTS", "fast,kill", {"fast", "kill", "freeze"}),
            db_down_seconds=_env("DB_DOWN_SECONDS", 10, float),
            recovery_max=_env("RECOVERY_MAX_SECONDS", 10, float),
            answer_max=_env("ANSWER_MAX_SECONDS", 5, float),
            recovery_timeout=60,
            kills=_env("KILLS", 4),
            kill_interval=_env("KILL_INTERVAL", 3, float),
            load_seconds=_env("LOAD_SECONDS", 180, float),
            warmup_seconds=_env("WARMUP_SECONDS", 30, float),
            threads=_env("THREADS", 16),
            rss_tolerance=_env("RSS_TOLERANCE", 0.10, float),
            password_seconds=_env("PASSWORD_SECONDS", 15, float),
            attackers=[int(n) for n in _env("ATTACKERS", "4,16", str).split(",") if n.strip()],
            password_attack=_names("PASSWORD_ATTACK", "retry", {"retry", "flood", "plain"})[0],
            seed=_env("SEED", random.randrange(10**6)),
            output=_env("OUTPUT", "", str),
        )
        if knobs.workers < 2 or knobs.threads < 2 or knobs.load_seconds <= 0:
            raise BenchError(
                "RELIABILITY_WORKERS and _THREADS must be at least 2, _LOAD_SECONDS > 0"
            )
        if knobs.password_seconds <= 0 or not 0 < sum(knobs.attackers) <= 200:
            raise BenchError(
                "RELIABILITY_PASSWORD_SECONDS must be > 0, RELIABILITY_ATTACKERS 1 to 200 in all"
            )
        return knobs

    def budget(self):
        """Seconds the whole run may take before the alarm stops it: every phase's own bound,
        generously, plus set-up."""
        database = len(self.db_faults) * (self.db_down_seconds + self.recovery_timeout + 60)
        workers = self.kills * (self.kill_interval + 60) + 240
        load = self.warmup_seconds + self.load_seconds + 600
        passwords = (len(self.attackers) + 1) * (self.password_seconds + 90) + 120
        return int(300 + database + workers + load + passwords)


@dataclass
class Context:
    knobs: Knobs
    tmp: Path
    pg: object
    env: dict
    creds: object


def machine(info):
    """The machine in one sentence; `info` is report.machine's, read at the start."""
    end = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return (
        f"{info['nproc']} CPUs ({info['cpu']}), shared with whatever else runs: load average "
        f"{' '.join(info['loadavg'])} at the start, {end} at the end; Python {info['python']}, "
        f"gunicorn {info['gunicorn']}; HEAD {info['commit']}"
        + (f" with {len(info['changed'])} uncommitted files" if info["changed"] else "")
    )


def main():
    knobs = Knobs.from_env()
    random.seed(knobs.seed)
    log(f"seed {knobs.seed}; scenarios {', '.join(knobs.scenarios)}; budget {knobs.budget()} s")
    signal.signal(signal.SIGALRM, _out_of_time)
    signal.alarm(knobs.budget())
    info = report.machine(VENV_BIN)
    results = []
    with contextlib.ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="relayapi-reliability-"))
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        tmp.chmod(0o755)  # PostgreSQL runs as the postgres user in a folder below it
        pg, env, creds = prepare(stack, tmp)
        context = Context(knobs, tmp, pg, env, creds)
        for name in knobs.scenarios:
            log(f"scenario {name}")
            result = SCENARIOS[name](context)
            results.append(result)
            log(f"scenario {name}: {'PASS' if result.passed else 'FAIL'}")
    signal.alarm(0)
    text = summary.table(results, time.monotonic() - STARTED, machine(info))
    text += f"\n\nSeed {knobs.seed} (RELIABILITY_SEED).\n"
    print(text)
    if knobs.output:
        Path(knobs.output).write_text(text)
    log(f"took {time.monotonic() - STARTED:.0f} s")
    return 0 if all(r.passed for r in results) else 1


def _out_of_time(signum, frame):
    raise BenchError("out of time: the run's alarm went off (RELIABILITY_* knobs set the budget)")


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)
    try:
        sys.exit(main())
    except BenchError as error:
        log(f"failed: {error}")
        sys.exit(2)
    except KeyboardInterrupt:
        log("interrupted; everything it started is stopped")
        sys.exit(130)
