"""`make bench`: RelayAPI under wrk, on PostgreSQL with 100,000 relay servers.

Starts a throwaway PostgreSQL (deploy/pg-temp.sh), migrates it, seeds relay servers in bulk
(seed.py), creates a superuser and a Mail Manager access key, starts gunicorn with the production
config (deploy/gunicorn.conf.py, DEBUG off, 2 workers) and a loopback nginx in front of it, and
drives each endpoint with wrk. Every row is measured right after a floor run of `GET /healthz`
through the same stack and reported as a ratio to it, so the figures say what the application
costs on top of the stack, whatever the machine. Prints a Markdown table and writes it, with the
machine, to deploy/bench/last-run.md. Whatever happens, everything it started is stopped.

Knobs (environment): BENCH_RELAYS (100000), BENCH_SECONDS per run (10), BENCH_WARMUP (2),
BENCH_OUTPUT (deploy/bench/last-run.md). Exit status: 0 when every row was measured cleanly
(targets missed are reported, not failures), 1 when a row had errors, 2 when a step failed.
"""

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import nginx
import report
from cryptography.fernet import Fernet
from processes import (
    STARTED,
    BenchError,
    call,
    ensure_packages,
    free_port,
    log,
    run,
    start,
    wait_until_up,
)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENV_BIN = Path(sys.executable).parent
RELAYS = int(os.environ.get("BENCH_RELAYS", "100000"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "2"))
OUTPUT = Path(os.environ.get("BENCH_OUTPUT", HERE / "last-run.md"))
CONNECTIONS, THREADS, WORKERS = 8, 2, 2
DEEP_PAGE = 900
USERNAME = "bench"
GA = "/ga/api/v3/eng/relay_servers"


@dataclass
class Load:
    """What wrk sends. `method` and `body` are replayed as they are by replay.lua; for the
    scripted loads (create.lua, update.lua) they are the one request sent first as a check."""

    base: str
    path: str
    method: str = "GET"
    body: bytes = b""
    headers: dict = field(default_factory=dict)
    script: str = "replay.lua"


@dataclass
class Row:
    """A line of the table, with its targets from issue 8 item 5 (None: no target)."""

    key: str
    label: str
    load: object  # () -> Load, called when the row starts (a SigV4 signature is then fresh)
    floor: Load
    min_ratio: float | None = None  # req/s over the floor's
    max_p50_vs_page0: float | None = None  # p50 over list page 0's p50


class Bench:
    """Runs wrk: 8 connections on 2 threads, latency percentiles, the figures from report.lua."""

    def __init__(self, tmp, wrk_bin):
        self.tmp, self.wrk_bin = tmp, wrk_bin
        self.runs = 0

    def wrk(self, load, seconds):
        args = []
        if load.script == "replay.lua":
            args = [load.method]
            if load.body:
                self.runs += 1
                body_file = self.tmp / f"body-{self.runs}"
                body_file.write_bytes(load.body)
                args.append(body_file)
        elif load.script == "create.lua":
            args = [f"b{secrets.token_hex(4)}"]  # a fresh name prefix for every run
        cmd = [self.wrk_bin, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency"]
        cmd += ["--timeout", "30s", "-s", HERE / load.script]
        for name, value in load.headers.items():
            cmd += ["-H", f"{name}: {value}"]
        out = run([*cmd, load.base + load.path, "--", *args], timeout=seconds + 60)
        line = next((x for x in out.splitlines() if x.startswith("BENCH_JSON ")), None)
        if line is None:
            raise BenchError(f"wrk printed no figures:\n{out}")
        return report.Stats(**json.loads(line.removeprefix("BENCH_JSON ")))

    def check(self, load):
        """One request first, so that a wrong URL or credential stops the bench with the answer
        instead of a table of errors; wrk itself only counts statuses of 400 and above."""
        status, text = call(load.base, load.method, load.path, load.headers, load.body)
        if not 200 <= status < 300:
            raise BenchError(f"{load.method} {load.path} answered {status}: {text[:500]}")
        return text

    def measure(self, row, page0):
        load = row.load()
        log(f"{row.label}: warm-up {WARMUP} s, floor {SECONDS} s, row {SECONDS} s")
        self.check(load)
        self.wrk(load, WARMUP)
        floor = self.wrk(row.floor, SECONDS)
        stats = self.wrk(load, SECONDS)
        log(
            f"  {stats.req_s:.1f} req/s (floor {floor.req_s:.1f}), p50 {stats.p50_us / 1000:.1f} ms"
            f", p99 {stats.p99_us / 1000:.1f} ms, non-2xx {stats.non2xx}"
        )
        return report.Result(row, stats, floor, page0)


def sign(base, target, payload, key):
    """Headers and body of one Mail Manager request signed by botocore, as boto3 would send it,
    for the exact Host wrk sends. The signature stays valid for 15 minutes."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    body = json.dumps(payload).encode()
    host = urllib.parse.urlsplit(base).netloc
    request = AWSRequest(
        method="POST",
        url=base + "/",
        data=body,
        headers={
            "Host": host,
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": f"MailManagerSvc.{target}",
        },
    )
    credentials = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    SigV4Auth(credentials, "ses", "us-east-1").add_auth(request)
    return Load(base, "/", "POST", body, dict(request.headers.items()))


def app_env(database_url, tmp):
    """The app's environment: production settings (DEBUG off) on the throwaway database, behind
    the proxy as deploy/nginx's template asks (it sets X-Request-Id)."""
    env = {k: v for k, v in os.environ.items() if k != "RELAYAPI_MAX_RELAYS"}
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        RELAYAPI_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        DATABASE_URL=database_url,
        RELAYAPI_VAR_DIR=str(tmp / "var"),
        RELAYAPI_TRUST_REQUEST_ID="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env, *args, timeout=300):
    return run([VENV_BIN / "python", "manage.py", *args], timeout=timeout, cwd=ROOT, env=env)


@dataclass
class Setup:
    """What the rows need: the two base URLs, the seeded relays, the credentials."""

    app: str
    proxy: str
    seeded: dict
    password: str
    key: dict
    gunicorn: subprocess.Popen


def set_up(stack, tmp, nginx_bin, info):
    """PostgreSQL migrated and seeded, a superuser with an access key, gunicorn, nginx."""
    log("starting PostgreSQL")
    pg_dir = tmp / "pg"

    def stop_postgres():
        log("stopping PostgreSQL")
        subprocess.run(
            [ROOT / "deploy/pg-temp.sh", "stop", pg_dir], capture_output=True, timeout=120
        )

    stack.callback(stop_postgres)
    database_url = run([ROOT / "deploy/pg-temp.sh", "start", pg_dir]).strip().splitlines()[-1]
    env = app_env(database_url, tmp)
    manage(env, "migrate", "--noinput")
    manage(env, "collectstatic", "--noinput")  # as deploy/entrypoint.sh does

    log(f"seeding {RELAYS} relay servers")
    seeded = json.loads(run([VENV_BIN / "python", HERE / "seed.py", RELAYS], env=env))
    log(f"seeded {seeded['count']} relay servers in {seeded['seconds']} s")

    password = secrets.token_urlsafe(24)
    superuser = {
        "DJANGO_SUPERUSER_USERNAME": USERNAME,
        "DJANGO_SUPERUSER_PASSWORD": password,
        "DJANGO_SUPERUSER_EMAIL": "bench@example.com",
    }
    manage({**env, **superuser}, "createsuperuser", "--noinput")
    key = json.loads(manage(env, "create_access_key", USERNAME))

    bind = f"127.0.0.1:{free_port()}"
    app = f"http://{bind}"
    gunicorn_log = tmp / "gunicorn.log"
    gunicorn_env = {**env, "BIND": bind, "WEB_CONCURRENCY": str(WORKERS)}
    gunicorn_cmd = [VENV_BIN / "gunicorn", "-c", "deploy/gunicorn.conf.py", "relayapi.wsgi"]
    log(f"starting gunicorn on {bind}")
    gunicorn = start(stack, "gunicorn", gunicorn_cmd, gunicorn_log, cwd=ROOT, env=gunicorn_env)
    wait_until_up(app, gunicorn, "gunicorn", gunicorn_log)

    nginx_dir = tmp / "nginx"
    nginx_dir.mkdir()
    conf, proxy, info["proxy"] = nginx.render(nginx_dir, bind, free_port(), free_port())
    nginx_cmd = [nginx_bin, "-p", nginx_dir, "-c", conf, "-e", nginx_dir / "error.log"]
    log(f"starting nginx on {proxy}")
    nginx_process = start(stack, "nginx", nginx_cmd, nginx_dir / "stderr.log")
    wait_until_up(proxy, nginx_process, "nginx", nginx_dir / "error.log")
    return Setup(app, proxy, seeded, password, key, gunicorn)


def rows(setup, bench):
    """The rows of the table, in the order they are measured (creates after the lists)."""
    app, proxy, seeded, key = setup.app, setup.proxy, setup.seeded, setup.key
    basic = base64.b64encode(f"{USERNAME}:{setup.password}".encode()).decode()
    auth = {"Authorization": f"Basic {basic}"}
    json_auth = {**auth, "Content-Type": "application/json"}
    one = f"{GA}/{seeded['sample']['id']}"
    deep = min(DEEP_PAGE, -(-seeded["count"] // 100) - 1)
    # A real token for the deep page: the one the page before it hands out.
    before = json.loads(bench.check(Load(app, f"{GA}?page={deep - 1}", headers=auth)))
    token = urllib.parse.quote(before["data"]["pagination"]["next_page_token"], safe="")
    new_relay = {
        "relay_server": {
            "name": "bench-check",
            "source_ip": {"ip": "127.0.0.2", "hostname": "out.bench.example.com"},
            "destination": {"hostname": "smtp.bench.example.net", "port": 25},
            "throttle_limits": {"max_concurrent_connections": 2, "max_messages_per_hour": 120},
        }
    }
    create = json.dumps(new_relay).encode()
    update = json.dumps({"relay_server": {"destination": {"port": 2525}}}).encode()
    updated = f"{GA}/{seeded['first_id']}"
    get_relay = {"RelayId": seeded["sample"]["relay_id"]}
    floor, proxy_floor = Load(app, "/healthz"), Load(proxy, "/healthz")
    return [
        Row(
            "get", "GET one relay server (Basic)", lambda: Load(app, one, headers=auth), floor, 0.5
        ),
        Row("page0", "list page 0 (Basic)", lambda: Load(app, GA, headers=auth), floor, 0.3),
        Row(
            "token",
            f"list page {deep} by `page_token` (Basic)",
            lambda: Load(app, f"{GA}?page_token={token}", headers=auth),
            floor,
            max_p50_vs_page0=1.2,
        ),
        Row(
            "page",
            f"list page {deep} by `page={deep}` (Basic)",
            lambda: Load(app, f"{GA}?page={deep}", headers=auth),
            floor,
            max_p50_vs_page0=2.0,
        ),
        Row(
            "create",
            "create (POST, Basic, a new name each)",
            lambda: Load(app, GA, "POST", create, json_auth, "create.lua"),
            floor,
            0.2,
        ),
        Row(
            "update",
            "update (PUT of one relay's port, Basic)",
            lambda: Load(app, updated, "PUT", update, json_auth, "update.lua"),
            floor,
        ),
        Row(
            "getrelay",
            "Mail Manager GetRelay (SigV4)",
            lambda: sign(app, "GetRelay", get_relay, key),
            floor,
            0.5,
        ),
        Row(
            "listrelays",
            "Mail Manager ListRelays (SigV4)",
            lambda: sign(app, "ListRelays", {}, key),
            floor,
            0.4,
        ),
        Row(
            "proxy",
            "GET one relay server through nginx (Basic)",
            lambda: Load(proxy, one, headers=auth),
            proxy_floor,
        ),
    ]


def main():
    if RELAYS < 200:
        raise BenchError("BENCH_RELAYS must be at least 200 (a deep page needs two pages)")
    info = report.machine(VENV_BIN)
    with contextlib.ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="relayapi-bench-"))
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        tmp.chmod(0o755)  # PostgreSQL runs as the postgres user in a folder below it
        wrk_bin, nginx_bin = ensure_packages()
        info["wrk"] = subprocess.run([wrk_bin, "-v"], capture_output=True, text=True).stdout
        info["nginx"] = subprocess.run([nginx_bin, "-v"], capture_output=True, text=True).stderr
        setup = set_up(stack, tmp, nginx_bin, info)
        info["seeded"] = setup.seeded

        bench = Bench(tmp, wrk_bin)
        log("warming up the floor")
        bench.wrk(Load(setup.app, "/healthz"), WARMUP)
        results, page0 = [], None
        for row in rows(setup, bench):
            result = bench.measure(row, page0)
            page0 = result.stats if row.key == "page0" else page0
            results.append(result)
        rss = report.worker_rss(setup.gunicorn.pid)

    info.update(
        elapsed=time.monotonic() - STARTED,
        seconds=SECONDS,
        warmup=WARMUP,
        connections=CONNECTIONS,
        threads=THREADS,
        workers=WORKERS,
    )
    text = report.markdown(results, rss, info)
    print(text)
    OUTPUT.write_text(text)
    log(f"written to {OUTPUT}; took {time.monotonic() - STARTED:.0f} s")
    return 1 if any(not r.clean for r in results) else 0


def _exit_on_signal(signum, frame):
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_signal)
    signal.signal(signal.SIGHUP, _exit_on_signal)
    try:
        sys.exit(main())
    except (BenchError, nginx.TemplateError) as error:
        log(f"failed: {error}")
        sys.exit(2)
    except KeyboardInterrupt:
        log("interrupted; everything it started is stopped")
        sys.exit(130)
