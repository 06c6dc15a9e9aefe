"""The clients of a fault run: GreenArrow over HTTP Basic, Mail Manager through boto3, and the
record of every request each sent (when, what, the answer), which the expectations are read from.
"""

import base64
import http.client
import itertools
import json
import secrets
import threading
import time
import traceback
from dataclasses import dataclass, field
from types import SimpleNamespace

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.retries import standard
from stack import call

GA = "/ga/api/v3/eng"
SERVER_ERRORS = range(500, 600)
# HTTP attempts of the boto3 call running on this thread (boto3 retries on the calling thread).
_attempts = threading.local()


@dataclass
class Outcome:
    """One call as the client saw it. `status` None: no HTTP answer at all (the connection was
    refused, reset or timed out). `code`: the envelope's error_code, the AWS error code, or the
    exception's class. `attempts`: HTTP requests sent for it (boto3 retries)."""

    api: str  # "greenarrow", "mailmanager" or "readyz"
    op: str
    started: float
    ended: float
    status: int | None
    code: str = ""
    attempts: int = 1
    data: object = None
    request: str = ""
    answer: str = ""

    @property
    def ok(self):
        return self.status == 200

    def describe(self):
        what = self.request or self.op
        return f"{self.api} {what} -> {self.status or 'no answer'} {self.code} {self.answer[:300]}"


class Recorder:
    """Every outcome and every HTTP attempt (boto3's retries are attempts of one call)."""

    def __init__(self):
        self.outcomes = []
        self.attempts = []  # (api, time, status or None, code)
        self._lock = threading.Lock()

    def add(self, outcome):
        with self._lock:
            self.outcomes.append(outcome)
        return outcome

    def attempt(self, api, status, code):
        with self._lock:
            self.attempts.append((api, time.monotonic(), status, code))

    def of(self, api=None, op=None):
        with self._lock:
            return [
                o
                for o in self.outcomes
                if (api is None or o.api == api) and (op is None or o.op == op)
            ]

    def requests(self):
        """HTTP requests sent: GreenArrow calls and probes one each, boto3 calls their attempts."""
        with self._lock:
            return sum(o.attempts for o in self.outcomes)

    def server_errors(self):
        """HTTP answers 500-599, boto3's retried attempts included."""
        with self._lock:
            plain = sum(
                1 for o in self.outcomes if o.api != "mailmanager" and o.status in SERVER_ERRORS
            )
            return plain + sum(1 for a in self.attempts if a[2] in SERVER_ERRORS)


class Names:
    """Unique VirtualMTA names: a prefix per run and scenario, then a counter."""

    def __init__(self, prefix):
        self.prefix = f"{prefix}-{secrets.token_hex(3)}"
        self._counter = itertools.count(1)

    def __call__(self, kind):
        return f"{self.prefix}-{kind}-{next(self._counter)}"


class GreenArrow:
    """HTTP Basic calls, one connection each (gunicorn's sync workers close after every answer)."""

    def __init__(self, base, username, password, recorder):
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.base = base
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}
        self.recorder = recorder

    def send(self, op, method, path, body=None):
        started = time.monotonic()
        request = f"{method} {GA}{path}" + (f" {json.dumps(body)}" if body is not None else "")
        raw = json.dumps(body).encode() if body is not None else b""
        try:
            status, text = call(self.base, method, GA + path, self.headers, raw)
        except (OSError, http.client.HTTPException) as error:
            outcome = Outcome(
                "greenarrow", op, started, time.monotonic(), None, type(error).__name__
            )
            outcome.request = request
            return self.recorder.add(outcome)
        ended = time.monotonic()
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
        envelope = payload if isinstance(payload, dict) else {}
        outcome = Outcome(
            "greenarrow",
            op,
            started,
            ended,
            status,
            envelope.get("error_code") or ("" if status == 200 else "not-an-envelope"),
            data=envelope.get("data"),
            request=request,
            answer="" if status == 200 else text[:500],
        )
        return self.recorder.add(outcome)

    def get(self, op, path):
        return self.send(op, "GET", path)

    def post(self, op, path, body):
        return self.send(op, "POST", path, body)

    def put(self, op, path, body):
        return self.send(op, "PUT", path, body)

    def delete(self, op, path):
        return self.send(op, "DELETE", path)


def probe(base, recorder):
    """One GET /readyz, recorded."""
    started = time.monotonic()
    try:
        status, text = call(base, "GET", "/readyz")
    except (OSError, http.client.HTTPException) as error:
        return recorder.add(
            Outcome("readyz", "readyz", started, time.monotonic(), None, type(error).__name__)
        )
    return recorder.add(
        Outcome("readyz", "readyz", started, time.monotonic(), status, answer=text[:200])
    )


def mailmanager(base, key, recorder, max_attempts=1):
    """A boto3 client in standard retry mode making at most `max_attempts` HTTP requests per
    call (3 is boto3's default), whose every attempt, retried or not, is recorded."""
    client = boto3.client(
        "mailmanager",
        endpoint_url=base,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        config=Config(
            # total_max_attempts counts the first attempt too (botocore's max_attempts does not).
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
        ),
    )

    def count(response=None, caught_exception=None, **kwargs):
        _attempts.count = getattr(_attempts, "count", 0) + 1
        if caught_exception is not None:
            recorder.attempt("mailmanager", None, type(caught_exception).__name__)
        elif response is not None:
            http_response, parsed = response
            code = (parsed or {}).get("Error", {}).get("Code", "")
            recorder.attempt("mailmanager", http_response.status_code, code)

    client.meta.events.register("needs-retry.mailmanager", count)
    return client


def mm_call(client, recorder, op, **params):
    """One boto3 call (with whatever retries the client makes), recorded as one outcome."""
    started = time.monotonic()
    request = f"{op} {json.dumps(params, default=str)}"
    _attempts.count = 0
    try:
        response = getattr(client, op)(**params)
    except ClientError as error:
        meta = error.response.get("ResponseMetadata", {})
        outcome = Outcome(
            "mailmanager",
            op,
            started,
            time.monotonic(),
            meta.get("HTTPStatusCode"),
            error.response.get("Error", {}).get("Code", ""),
            attempts=meta.get("RetryAttempts", 0) + 1,
            data=error.response,
            request=request,
            answer=error.response.get("Error", {}).get("Message", ""),
        )
        return recorder.add(outcome)
    except BotoCoreError as error:
        outcome = Outcome("mailmanager", op, started, time.monotonic(), None, type(error).__name__)
        outcome.request, outcome.answer = request, str(error)
        outcome.attempts = max(1, _attempts.count)  # boto3 gave up after these
        return recorder.add(outcome)
    meta = response["ResponseMetadata"]
    outcome = Outcome(
        "mailmanager",
        op,
        started,
        time.monotonic(),
        meta["HTTPStatusCode"],
        attempts=meta.get("RetryAttempts", 0) + 1,
        data=response,
        request=request,
    )
    return recorder.add(outcome)


def sdk_retries(outcome):
    """Whether boto3's standard retry mode retries this answer (the SDK's own rules)."""
    context = standard.RetryContext(
        attempt_number=1,
        parsed_response=outcome.data if isinstance(outcome.data, dict) else None,
        http_response=SimpleNamespace(status_code=outcome.status),
    )
    return standard.StandardRetryConditions().is_retryable(context)


@dataclass
class Crew:
    """Client threads running `work(stop)` in a loop until stopped; an exception in one stops
    the run with its traceback (a harness bug must not pass for a quiet product)."""

    stop: threading.Event = field(default_factory=threading.Event)
    threads: list = field(default_factory=list)
    crashes: list = field(default_factory=list)

    def add(self, name, work, pause=0.0):
        def loop():
            try:
                while not self.stop.is_set():
                    work()
                    if pause:
                        self.stop.wait(pause)
            except Exception as error:  # reported by the scenario
                self.crashes.append(f"{name}: {error!r}\n{traceback.format_exc()}")
                self.stop.set()

        thread = threading.Thread(target=loop, name=name, daemon=True)
        self.threads.append(thread)
        return thread

    def start(self):
        for thread in self.threads:
            thread.start()

    def finish(self, timeout=120):
        self.stop.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        stuck = [t.name for t in self.threads if t.is_alive()]
        return stuck
