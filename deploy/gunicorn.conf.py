"""gunicorn settings for RelayAPI; every value can be overridden from the environment.

Used by `make serve`, `deploy/entrypoint.sh` (the container, the end-to-end tests) and the
systemd unit. The README's "Deployment" section lists the variables.
"""

import multiprocessing
import os
from pathlib import Path

from gunicorn.glogging import Logger

from relayapi.logging import JsonFormatter


def env_int(name, default):
    """An integer setting; unset or empty means the default."""
    return int(os.environ.get(name) or default)


# Production binds a Unix socket (README "Deployment": BIND=unix:/run/relayapi/gunicorn.sock),
# which only the proxy may open; this default is for `make serve` on a laptop. TCP stays
# possible (the container listens on 0.0.0.0:8000), but then every process that can reach the
# port talks to gunicorn as directly as the proxy does.
bind = os.environ.get("BIND") or "127.0.0.1:8000"
# A Unix socket is made read-write for its owner and group only (0660); who the group is, and
# the directory's mode, decide who may connect (deploy/systemd/relayapi.service).
umask = 0o117
workers = env_int("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1)
threads = env_int("GUNICORN_THREADS", 1)
# A request that runs longer is killed (and its transaction rolled back): every request does
# bounded work, so this only fires on a fault.
timeout = env_int("GUNICORN_TIMEOUT", 30)
graceful_timeout = env_int("GUNICORN_GRACEFUL_TIMEOUT", 30)
# nginx keeps its upstream connections short; a little keep-alive helps clients that connect
# directly (health checks, benchmarks).
keepalive = 5
# Bodies over 1 MiB are refused by the app; gunicorn need not buffer more than that per field.
limit_request_field_size = 16384
# Only these addresses may set X-Forwarded-Proto (https) and the like: by default the app's own
# trusted proxies (RELAYAPI_TRUSTED_PROXIES) that are addresses. gunicorn always believes a Unix
# socket's peer, so `unix` alone trusts no TCP peer at all. Explicit, so gunicorn's own default
# (127.0.0.1,::1) never applies; FORWARDED_ALLOW_IPS overrides it, set empty for no TCP peer.
if "FORWARDED_ALLOW_IPS" in os.environ:
    forwarded_allow_ips = os.environ["FORWARDED_ALLOW_IPS"]
else:
    forwarded_allow_ips = ",".join(
        proxy.strip()
        for proxy in os.environ.get("RELAYAPI_TRUSTED_PROXIES", "").split(",")
        if proxy.strip() not in ("", "unix")
    )
proc_name = "relayapi"
# Every worker of this server shares the password hashing slots (relays/password_slots.py):
# lock files in the runtime directory systemd makes (RuntimeDirectory=), else in the var dir.
os.environ.setdefault(
    "RELAYAPI_PASSWORD_HASH_SLOT_DIR",
    str(
        Path(
            os.environ.get("RUNTIME_DIRECTORY", "").split(":")[0]
            or os.environ.get("RELAYAPI_VAR_DIR")
            or Path(__file__).resolve().parent.parent / "var"
        )
        / "password-slots"
    ),
)
# The worker heartbeat files: memory, not a disk that may stall (containers overlay /tmp).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# gunicorn >= 25 opens a control socket (for `gunicornc`) in the home directory by default, one
# path shared by every instance on the machine. Off unless a path of this instance's own is given,
# e.g. /run/relayapi/gunicorn.ctl.
if os.environ.get("GUNICORN_CONTROL_SOCKET"):
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]
else:
    control_socket_disable = True

# No access log: the app writes one JSON line per request (relayapi/middleware.py), with the
# request id and user. gunicorn's own line prints the Basic username from the Authorization
# header unescaped, so a username with a newline in it could forge log lines.
accesslog = None
errorlog = "-"
loglevel = (os.environ.get("LOG_LEVEL") or "info").lower()


class JsonLogger(Logger):
    """gunicorn's error log ("Booting worker", "Worker timeout", bad requests) as JSON lines
    on standard error, like everything else."""

    def setup(self, cfg):
        super().setup(cfg)
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())


logger_class = JsonLogger
