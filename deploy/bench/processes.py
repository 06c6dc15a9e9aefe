"""The processes `make bench` runs: commands run to completion, servers started in their own
session and stopped whatever happens, HTTP checks, and the Debian packages it needs."""

import contextlib
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])
STARTED = time.monotonic()


class BenchError(Exception):
    """A step of the harness failed; the message says which and why."""


def log(message):
    print(f"[bench {time.monotonic() - STARTED:4.0f}s] {message}", file=sys.stderr, flush=True)


def run(cmd, timeout=120, **kwargs):
    """Run a command to completion and return its standard output, or raise BenchError."""
    try:
        done = subprocess.run(
            [str(part) for part in cmd], capture_output=True, text=True, timeout=timeout, **kwargs
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"{cmd[0]} took more than {timeout} s") from None
    if done.returncode:
        raise BenchError(f"{' '.join(map(str, cmd))} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, lines=30):
    with contextlib.suppress(OSError):
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    return ""


def ensure_packages():
    """The paths of wrk and nginx, installed from Debian when missing (as root)."""
    missing = [name for name in ("wrk", "nginx") if not shutil.which(name, path=SEARCH_PATH)]
    if missing:
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise BenchError(f"install Debian's {' and '.join(missing)} (or run this as root)")
        log(f"installing {' '.join(missing)} with apt-get")
        run(["apt-get", "update", "-qq"], timeout=300)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run(["apt-get", "install", "-y", "-qq", *missing], timeout=600, env=env)
    return shutil.which("wrk", path=SEARCH_PATH), shutil.which("nginx", path=SEARCH_PATH)


def start(stack, name, cmd, log_path, **kwargs):
    """A background process in its own session, stopped when `stack` closes. Its own session:
    Ctrl-C reaches only this driver, which then stops everything in order."""
    with open(log_path, "ab") as out:
        process = subprocess.Popen(
            [str(part) for part in cmd],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kwargs,
        )
    stack.callback(stop, process, name)
    return process


def stop(process, name):
    if process.poll() is None:
        log(f"stopping {name}")
        process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        log(f"{name} did not stop within 20 s: killing its process group")
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def call(base, method, path, headers=None, body=b""):
    """(status, body text) of one request, sent the way wrk will send it (TLS unverified)."""
    parts = urllib.parse.urlsplit(base)
    if parts.scheme == "https":
        context = ssl._create_unverified_context()  # the bench's own self-signed certificate
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, context=context)
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request(method, path, body=body or None, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        connection.close()


def wait_until_up(base, process, name, log_path, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise BenchError(f"{name} exited with {process.returncode}:\n{tail(log_path)}")
        with contextlib.suppress(OSError):
            if call(base, "GET", "/healthz")[0] == 200:
                return
        if time.monotonic() > deadline:
            raise BenchError(
                f"{name} did not answer {base}/healthz in {timeout} s:\n{tail(log_path)}"
            )
        time.sleep(0.2)
