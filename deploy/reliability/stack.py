"""The stack `make reliability` runs and breaks: a throwaway PostgreSQL it can stop, kill and
start again on the same port and data directory, and gunicorn with the production config.

Starting PostgreSQL, the app's environment, manage.py and the process helpers are `make bench`'s
(deploy/pg-temp.sh, deploy/bench/processes.py, deploy/bench/run.py), imported, not copied.
"""

import contextlib
import importlib.util
import json
import os
import random
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BENCH = ROOT / "deploy" / "bench"
# After this folder: a module of ours never hides one of the bench's, nor the reverse.
sys.path.append(str(BENCH))

import processes  # noqa: E402  (deploy/bench/processes.py)
import report  # noqa: E402  (deploy/bench/report.py)
from processes import BenchError, call, free_port, run, tail  # noqa: E402

# deploy/bench/run.py, under another name: this folder has a run.py of its own.
_spec = importlib.util.spec_from_file_location("bench_run", BENCH / "run.py")
bench_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_run)

VENV_BIN = bench_run.VENV_BIN
USERNAME = "reliability"
STARTED = time.monotonic()


class HarnessError(BenchError):
    """A step of the harness itself failed (not an expectation about the product)."""


def log(message):
    print(
        f"[reliability {time.monotonic() - STARTED:4.0f}s] {message}", file=sys.stderr, flush=True
    )


def _as_owner(cmd):
    """PostgreSQL refuses to run as root; deploy/pg-temp.sh runs it as `postgres` then."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return [*prefix, *map(str, cmd)]


class Postgres:
    """deploy/pg-temp.sh's server, plus what a fault run needs: stop it (fast shutdown) or kill
    its postmaster, then start it again with exactly the options it had (its postmaster.opts),
    so the port, the socket directory and the data stay the same."""

    def __init__(self, stack, tmp):
        self.frozen = []
        self.dir = tmp / "pg"
        self.data = self.dir / "data"
        stack.callback(self._remove)
        self.url = run([ROOT / "deploy/pg-temp.sh", "start", self.dir]).strip().splitlines()[-1]
        argv = shlex.split((self.data / "postmaster.opts").read_text())
        self.pg_ctl = Path(argv[0]).parent / "pg_ctl"
        # Everything but the data directory, which pg_ctl passes itself.
        options, skip = [], False
        for arg in argv[1:]:
            if skip:
                skip = False
            elif arg == "-D":
                skip = True
            else:
                options.append(arg)
        self.options = shlex.join(options)
        # An answered commit must survive a killed postmaster: pg-temp.sh turns synchronous
        # commits off for speed, which can lose the last ~0.6 s of them on a crash. Per-database
        # settings win over the server's command line, so production's default is back.
        self.sql("ALTER DATABASE postgres SET synchronous_commit = on")

    def _remove(self):
        self.thaw()
        log("stopping PostgreSQL")
        subprocess.run(
            [ROOT / "deploy/pg-temp.sh", "stop", self.dir], capture_output=True, timeout=120
        )

    def sql(self, query, params=None):
        """Rows of one statement, on a connection of its own (autocommit)."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def postmaster_pid(self):
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.data / "postmaster.pid").read_text().splitlines()[0])
        return None

    def stop_fast(self):
        run(_as_owner([self.pg_ctl, "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop"]))

    def kill(self):
        pid = self.postmaster_pid()
        if pid is None:
            raise HarnessError("no postmaster.pid: is PostgreSQL running?")
        os.kill(pid, signal.SIGKILL)

    def processes(self):
        """The postmaster and its children (backends, checkpointer, ...)."""
        master = self.postmaster_pid()
        found = [master] if master else []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == master:
                    found.append(int(stat.parent.name))
        return found

    def freeze(self):
        """SIGSTOP every PostgreSQL process: a database that hangs (a host or network stall)
        rather than one that is down. Connections stay open; nothing answers."""
        self.frozen = self.processes()
        for pid in self.frozen:
            os.kill(pid, signal.SIGSTOP)

    def thaw(self):
        for pid in getattr(self, "frozen", []):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.frozen = []

    def start_again(self, timeout=60):
        """Start on the same data and port. After a killed postmaster its backends take a moment
        to exit; until they have, PostgreSQL refuses to start (its shared memory is in use), so
        this retries until the deadline."""
        deadline = time.monotonic() + timeout
        cmd = [self.pg_ctl, "-D", self.data, "-l", self.dir / "server.log", "-w", "-t", "60"]
        cmd += ["-o", self.options, "start"]
        while True:
            done = subprocess.run(_as_owner(cmd), capture_output=True, text=True, timeout=90)
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"PostgreSQL did not start again:\n{done.stdout}{done.stderr}\n"
                    f"{tail(self.dir / 'server.log')}"
                )
            time.sleep(0.3)


class Credentials:
    """A superuser for HTTP Basic and an access key of theirs for SigV4."""

    def __init__(self, env):
        self.password = secrets.token_urlsafe(24)
        superuser = {
            "DJANGO_SUPERUSER_USERNAME": USERNAME,
            "DJANGO_SUPERUSER_PASSWORD": self.password,
            "DJANGO_SUPERUSER_EMAIL": "reliability@example.com",
        }
        bench_run.manage({**env, **superuser}, "createsuperuser", "--noinput")
        self.username = USERNAME
        self.key = json.loads(bench_run.manage(env, "create_access_key", USERNAME))


def prepare(stack, tmp):
    """PostgreSQL started and migrated, the app's production environment, the credentials."""
    log("starting PostgreSQL (deploy/pg-temp.sh)")
    pg = Postgres(stack, tmp)
    env = bench_run.app_env(pg.url, tmp)
    bench_run.manage(env, "migrate", "--noinput")
    return pg, env, Credentials(env)


class App:
    """gunicorn with deploy/gunicorn.conf.py, started for one scenario and stopped after it."""

    def __init__(self, stack, env, tmp, name, workers):
        self.workers = workers
        bind = f"127.0.0.1:{free_port()}"
        self.port = int(bind.rsplit(":", 1)[1])
        self.base = f"http://{bind}"
        self.log_path = tmp / f"gunicorn-{name}.log"
        cmd = [VENV_BIN / "gunicorn", "-c", "deploy/gunicorn.conf.py", "relayapi.wsgi"]
        env = {**env, "BIND": bind, "WEB_CONCURRENCY": str(workers)}
        log(f"{name}: starting gunicorn ({workers} workers) on {bind}")
        self.process = processes.start(stack, "gunicorn", cmd, self.log_path, cwd=ROOT, env=env)
        processes.wait_until_up(self.base, self.process, "gunicorn", self.log_path)
        self.wait_ready()

    def worker_pids(self):
        return sorted(report.worker_rss(self.process.pid))

    def rss(self):
        """{pid: VmRSS in MiB} of every worker (/proc/<pid>/status)."""
        return report.worker_rss(self.process.pid)

    def alive(self):
        return self.process.poll() is None

    def wait_ready(self, timeout=60):
        """Until every worker is up and /readyz answers 200."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise HarnessError(f"gunicorn exited:\n{tail(self.log_path)}")
            with contextlib.suppress(OSError):
                if len(self.worker_pids()) == self.workers and self.get("/readyz")[0] == 200:
                    return
            if time.monotonic() > deadline:
                raise HarnessError(f"gunicorn not ready in {timeout} s:\n{tail(self.log_path)}")
            time.sleep(0.2)

    def get(self, path):
        return call(self.base, "GET", path)

    def busy_worker(self, timeout=1.0):
        """A worker with a client connection open (a request in flight), else any worker."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = [pid for pid in self.worker_pids() if self._serving(pid)]
            if busy:
                return random.choice(busy), True
            time.sleep(0.01)
        pids = self.worker_pids()
        return (random.choice(pids), False) if pids else (None, False)

    def _serving(self, pid):
        """Whether `pid` holds an established TCP connection on the app's port."""
        try:
            inodes = {
                m[1]
                for fd in Path(f"/proc/{pid}/fd").iterdir()
                if (m := re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd)))
            }
            lines = Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]
        except OSError:
            return False
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == self.port and fields[3] == "01" and fields[9] in inodes:
                return True
        return False

    def error_lines(self):
        """The error-level JSON lines gunicorn and the app wrote (tracebacks included)."""
        found = []
        with contextlib.suppress(OSError):
            for line in self.log_path.read_text(errors="replace").splitlines():
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict) and entry.get("level") in ("error", "critical"):
                    found.append(entry)
        return found
