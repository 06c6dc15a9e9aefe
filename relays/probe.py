"""A probe of a relay server over SMTP, as Postfix would reach it: connect from its source IP,
EHLO with its HELO name, STARTTLS when offered, AUTH with its stored credentials, QUIT. Each step
is reported with its time and the server's reply; no message is ever sent, and every step has a
timeout, so a probe ends within a few timeouts whatever the server does.

Used by `manage.py probe_relay` and the admin's "Probe" action.
"""

import contextlib
import smtplib
import socket
import ssl
import time
from dataclasses import dataclass, field

DEFAULT_TIMEOUT = 10.0  # seconds, per step


@dataclass
class Step:
    name: str
    ok: bool
    milliseconds: float
    reply: str

    def __str__(self):
        mark = "ok  " if self.ok else "FAIL"
        return f"{mark} {self.name:<9} {self.milliseconds:7.1f} ms  {self.reply}"


@dataclass
class Probe:
    relay: object
    steps: list = field(default_factory=list)

    @property
    def ok(self):
        return bool(self.steps) and all(step.ok for step in self.steps)

    def summary(self):
        failed = next((s for s in self.steps if not s.ok), None)
        if failed is None:
            return f"{self.relay.name}: every step succeeded"
        return f"{self.relay.name}: {failed.name} failed: {failed.reply}"


def _reply(code, message):
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    return f"{code} {' '.join(text.split())}"


class _Timer:
    def __init__(self, probe, name):
        self.probe, self.name = probe, name

    def __enter__(self):
        self.began = time.perf_counter()
        return self

    def done(self, ok, reply):
        elapsed = (time.perf_counter() - self.began) * 1000
        self.probe.steps.append(Step(self.name, ok, elapsed, reply))
        return ok

    def __exit__(self, kind, error, traceback):
        if error is None:
            return False
        if isinstance(error, smtplib.SMTPResponseException):
            self.done(False, _reply(error.smtp_code, error.smtp_error))
        elif isinstance(error, TimeoutError | socket.timeout):
            self.done(False, "no answer within the timeout")
        elif isinstance(error, ConnectionRefusedError):
            self.done(False, "connection refused (nothing listens on that port)")
        elif isinstance(error, OSError | smtplib.SMTPException | ssl.SSLError):
            self.done(False, str(error) or type(error).__name__)
        else:
            return False
        raise _Stop


class _Stop(Exception):
    pass


def probe(relay, timeout=DEFAULT_TIMEOUT):
    """Probe `relay` (a RelayServer); the Probe with its steps."""
    result = Probe(relay)
    client = smtplib.SMTP(local_hostname=relay.source_hostname, timeout=timeout)
    # smtplib binds here, before connecting: mail leaves from the relay's source IP.
    client.source_address = (relay.source_ip, 0)
    try:
        _steps(client, relay, result)
    except _Stop:
        pass
    finally:
        with contextlib.suppress(OSError):
            client.close()
    return result


def _steps(client, relay, result):
    with _Timer(result, "connect") as step:
        try:
            code, message = client.connect(relay.destination_hostname, relay.destination_port)
        except OSError as error:
            if error.errno == 99:  # EADDRNOTAVAIL
                step.done(False, f"cannot send from {relay.source_ip}: not an address of this host")
                raise _Stop from None
            raise
        if not step.done(code == 220, _reply(code, message)):
            raise _Stop
    with _Timer(result, "ehlo") as step:
        code, message = client.ehlo(relay.source_hostname)
        if not step.done(code == 250, _reply(code, message.splitlines()[0] if message else b"")):
            raise _Stop
    if client.has_extn("starttls"):
        with _Timer(result, "starttls") as step:
            # As Postfix's "encrypt" level: encrypted, the certificate not verified.
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
            client._host = relay.destination_hostname  # the TLS server name (SNI)
            code, message = client.starttls(context=context)
            version = client.sock.version() if code == 220 else ""
            step.done(code == 220, f"{_reply(code, message)} ({version})".replace(" ()", ""))
            client.ehlo(relay.source_hostname)
    _authenticate(client, relay, result)
    with _Timer(result, "quit") as step:
        code, message = client.quit()
        step.done(code == 221, _reply(code, message))


def _authenticate(client, relay, result):
    user, password = relay.destination_username, relay.destination_password
    if relay.secret_arn:
        result.steps.append(
            Step("auth", False, 0.0, "skipped: the credentials are in AWS Secrets Manager")
        )
        return
    if user is None and password is None:
        return  # no credentials: no AUTH step
    with _Timer(result, "auth") as step:
        offered = client.esmtp_features.get("auth", "").upper().split()
        mechanism = next((m for m in ("PLAIN", "LOGIN") if m in offered), None)
        if mechanism is None:
            step.done(False, f"the server offers no AUTH PLAIN or LOGIN ({' '.join(offered)})")
            raise _Stop
        # One attempt with one mechanism (smtplib's login() would go on trying others).
        client.user, client.password = user or "", password or ""
        authenticate = getattr(client, f"auth_{mechanism.lower()}")
        code, message = client.auth(mechanism, authenticate, initial_response_ok=True)
        step.done(code == 235, _reply(code, message))
