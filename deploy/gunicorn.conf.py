"""gunicorn settings for RelayAPI; every value can be overridden from the environment.

Used by `make serve`, `deploy/entrypoint.sh` (the container, the end-to-end tests) and the
systemd unit. The README's "Deployment" section lists the variables.
"""

import multiprocessing
import os

from gunicorn.glogging import Logger

from relayapi.logging import JsonFormatter


def env_int(name, default):
    """An integer setting; unset or empty means the default."""
    return int(os.environ.get(name) or default)


bind = os.environ.get("BIND") or "127.0.0.1:8000"
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
# Only these addresses may set X-Forwarded-Proto (https) and the like: the reverse proxy.
# Explicit, so gunicorn's own default or a stray FORWARDED_ALLOW_IPS="*" is a visible choice.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1"
proc_name = "relayapi"
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
