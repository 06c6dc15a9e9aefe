"""Real processes for the end-to-end tests: a database of their own, gunicorn, nginx.

These tests run in the PostgreSQL pass of the test command (they are marked `postgresql`). The
servers get a database of their own, created next to pytest-django's test database on the same
server (DATABASE_URL) and dropped afterwards. Everything listens on 127.0.0.1, every wait is
bounded, and every process started here is stopped in the fixture's teardown. An app server can
listen on a Unix socket instead of a port, as in production (README "Who is the proxy"); then
the tests reach it through the socket, as nginx does.
"""

import base64
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import boto3
import psycopg
import pytest
from botocore.config import Config
from cryptography.fernet import Fernet
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
# The interpreter running the tests is the project's; gunicorn and manage.py use the same one.
VENV_BIN = Path(sys.executable).parent
START_TIMEOUT = 60


@pytest.fixture(scope="module")
def database_url():
    """A fresh, empty database on the PostgreSQL server of DATABASE_URL, dropped afterwards."""
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        pytest.fail("the end-to-end tests need DATABASE_URL=postgres://... (the PostgreSQL pass)")
    name = f"relayapi_e2e_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield urlsplit(base)._replace(path=f"/{name}").geturl()
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def app_env(database_url, var_dir, **settings):
    """The environment of an app server: production settings (DEBUG off) unless overridden,
    nothing inherited from the test run's own Django configuration."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "RELAYAPI_", "GUNICORN_", "PYTEST_"))
        and key
        not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL", "BIND", "WEB_CONCURRENCY"}
    }
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}",
        DJANGO_SETTINGS_MODULE="relayapi.settings",
        SECRET_KEY="e2e-" + secrets.token_urlsafe(50),
        RELAYAPI_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=database_url,
        RELAYAPI_VAR_DIR=str(var_dir),
        WEB_CONCURRENCY="2",
        DB_WAIT_SECONDS="20",
    )
    env.update(settings)
    return env


def manage(env, *args):
    """manage.py ARGS against the servers' database; its standard output."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout


def create_superuser(env, username="admin", password="e2e-secret-pw"):
    manage(
        {
            **env,
            "DJANGO_SUPERUSER_USERNAME": username,
            "DJANGO_SUPERUSER_PASSWORD": password,
            "DJANGO_SUPERUSER_EMAIL": f"{username}@example.com",
        },
        "createsuperuser",
        "--noinput",
    )
    return username, password


def create_access_key(env, username):
    return json.loads(manage(env, "create_access_key", username))


class Process:
    """A server started for a test, in a session of its own so that stopping it also stops its
    children (gunicorn's workers, nginx's). Its output goes to a file."""

    def __init__(self, name, command, log_path, env=None):
        self.name = name
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
        self.popen = subprocess.Popen(
            [str(part) for part in command],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self):
        return self.log_path.read_text(errors="replace")

    def wait_until_answering(self, url, ssl_context=None, timeout=START_TIMEOUT, unix_socket=None):
        """Until GET url answers 200; fails early, with the output, if the process ends."""
        deadline = time.monotonic() + timeout
        while True:
            if self.popen.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.popen.returncode}:\n{self.output()}")
            try:
                answer = request(url, ssl_context=ssl_context, timeout=2, unix_socket=unix_socket)
                if answer.status == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{self.name} did not answer {url} in {timeout} s:\n{self.output()}")
            time.sleep(0.1)

    def stop(self, timeout=15):
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        self._log.close()


def start_app_server(name, env, port, tmp_path, unix_socket=None):
    """deploy/entrypoint.sh (wait for the database, migrate, collectstatic, gunicorn) on
    127.0.0.1:port, or on the Unix socket `unix_socket` if given, once it answers /readyz.
    Reach it with request(f"{server.url}...", unix_socket=server.socket)."""
    bind = f"unix:{unix_socket}" if unix_socket else f"127.0.0.1:{port}"
    server = Process(
        name,
        [ROOT / "deploy" / "entrypoint.sh"],
        tmp_path / f"{name}.log",
        env={**env, "BIND": bind},
    )
    # Over the socket the URL only names the Host (one of ALLOWED_HOSTS).
    server.url = "http://127.0.0.1" if unix_socket else f"http://127.0.0.1:{port}"
    server.socket = unix_socket
    server.wait_until_answering(f"{server.url}/readyz", unix_socket=unix_socket)
    return server


def start_pair(running, env, tmp_path, unix=False):
    """Two app servers, "a" and "b", on the database of `env`, started at once (their
    entrypoints migrate one after the other, under an advisory lock), on ports or (`unix`) on
    Unix sockets in tmp_path; each is stopped when `running` (an ExitStack) closes."""
    ports = dict(zip("ab", (free_port(), free_port()), strict=True))
    started = {}

    def start(name):
        socket_path = tmp_path / f"{name}.sock" if unix else None
        started[name] = start_app_server(name, env, ports[name], tmp_path, socket_path)

    threads = [threading.Thread(target=start, args=(name,)) for name in ports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for server in started.values():
        running.callback(server.stop)
    assert set(started) == {"a", "b"}, "an instance did not start (see the failure above)"
    return started["a"], started["b"]


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self):
        return json.loads(self.body)


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket, as nginx reaches gunicorn in production."""

    def __init__(self, host, path, timeout):
        super().__init__(host, timeout=timeout)
        self.socket_path = str(path)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def request(
    url, method="GET", body=None, headers=None, ssl_context=None, timeout=30, unix_socket=None
):
    """One HTTP(S) request on a connection of its own (through `unix_socket` when given, the
    URL then naming only the Host); any status is an answer."""
    parts = urlsplit(url)
    if unix_socket is not None:
        conn = UnixHTTPConnection(parts.hostname, unix_socket, timeout)
    elif parts.scheme == "https":
        conn = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl_context
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    try:
        conn.request(method, path, body=body, headers=headers or {})
        answer = conn.getresponse()
        return Response(answer.status, answer.headers, answer.read())
    finally:
        conn.close()


def basic(username, password):
    token = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def mailmanager(endpoint, key, verify=None):
    return boto3.client(
        "mailmanager",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        verify=verify,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def log_lines(process):
    """The JSON lines an app server wrote; any line that is not JSON fails the test."""
    lines = []
    for number, line in enumerate(process.output().splitlines(), 1):
        try:
            lines.append(json.loads(line))
        except ValueError:
            pytest.fail(f"{process.name} line {number} is not JSON: {line!r}")
    return lines


def tls_context(certificate):
    """A client context that trusts `certificate` (and nothing else) and checks the host."""
    return ssl.create_default_context(cafile=str(certificate))


def nginx_binary():
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if not found:
        pytest.fail(
            "nginx is not installed: deploy/run-tests.sh installs Debian's nginx package "
            "when run as root, or install it yourself"
        )
    return found
