"""A probe of a relay server over SMTP, as Postfix would reach it: connect from its source IP,
EHLO with its HELO name, STARTTLS when offered, AUTH with its stored credentials, QUIT. Each step
is reported with its time and the server's reply; no message is ever sent.

A probe is an act on the outside world with the relay's credentials, so it is bounded on every
side (SECURITY.md, "The SMTP probe"):

- where it goes: the destination is resolved once and that very address is connected to; an
  address of this host or of an internal network (loopback, link-local, private, multicast,
  unspecified, reserved) is refused unless `RELAYAPI_PROBE_ALLOW_PRIVATE` allows it;
- what it sends: AUTH only inside TLS (as Postfix's `encrypt` level, which the compiled
  configuration uses for every relay with credentials);
- what it shows: only replies shaped as SMTP (code, separator, printable text, bounded length);
  anything else is "not an SMTP server", never echoed, and credentials a server echoes back
  are redacted;
- how long it takes: one deadline for the whole probe, the name look-up, the connect, the TLS
  handshake and every read included; a reply too long ends it.

Used by `manage.py probe_relay` and the admin's "Probe" action; `record()` writes the audit entry
both doors leave.
"""

import base64
import contextlib
import ipaddress
import re
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

from django.conf import settings

from relays import audit
from relays.models import AuditEntry

DEFAULT_TIMEOUT = 30.0  # seconds for a whole probe (manage.py probe_relay)
# RFC 5321 4.5.3.1.5: a reply line is at most 512 bytes, CRLF included. A multiline reply
# (EHLO's) of a real server is well under a kilobyte.
MAX_LINE, MAX_REPLY = 512, 4096

NOT_SMTP = "not an SMTP server"
TOO_LONG = "reply too long"
NO_TLS = "server offers no STARTTLS: credentials not sent"
REDACTED = "(redacted)"
SETTING = "RELAYAPI_PROBE_ALLOW_PRIVATE"

_LINE = re.compile(rb"([2-5][0-9][0-9])(?:([ -])([^\r\n]*))?\r?\n")
_FEATURE = re.compile(r"([A-Za-z0-9][A-Za-z0-9-]*)[ =]?(.*)")


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
    """The outcome of one probe: the address connected to (None when the name did not resolve)
    and each step taken; a failed step is the last one."""

    relay: object
    timeout: float
    address: str | None = None
    port: int | None = None
    steps: list = field(default_factory=list)

    @property
    def ok(self):
        return bool(self.steps) and all(step.ok for step in self.steps)

    @property
    def verdict(self):
        failed = next((s for s in self.steps if not s.ok), None)
        if failed is None:
            return "every step succeeded"
        return f"{failed.name} failed: {failed.reply}"

    def summary(self):
        return f"{self.relay.name}: {self.verdict}"


def probe(relay, timeout=DEFAULT_TIMEOUT):
    """Probe `relay` (a RelayServer) within `timeout` seconds in all; the Probe with its steps.
    Never raises for anything the network or the server does."""
    run = _Run(relay, timeout)
    try:
        run.steps()
    except _Stop:
        pass
    finally:
        run.close()
    return run.result


def record(result):
    """Audit `result` as the current actor (relays.audit.acting): which relay, the address and
    port connected to, the outcome and its steps. Never a credential: the steps hold replies,
    which are redacted, not what was sent."""
    relay = result.relay
    return audit.record(
        AuditEntry.Action.PROBE,
        relay.type,
        relay.pk,
        relay.name,
        None,
        {
            "address": result.address,
            "port": result.port,
            "outcome": "ok" if result.ok else "failed",
            "summary": result.summary(),
            "steps": [
                {
                    "name": step.name,
                    "ok": step.ok,
                    "milliseconds": round(step.milliseconds, 1),
                    "reply": step.reply,
                }
                for step in result.steps
            ],
        },
    )


class _Stop(Exception):
    """A step failed (and is recorded): the probe ends."""


class _Failure(Exception):
    """What a step fails with, in words fit to show."""


@dataclass
class _Reply:
    code: int
    lines: list

    def __str__(self):
        return f"{self.code} {' '.join(self.lines[0].split())}".rstrip()


class _Deadline:
    def __init__(self, seconds):
        self.seconds, self.end = seconds, time.monotonic() + seconds

    @property
    def passed(self):
        return f"no complete answer within the probe's {self.seconds:g} s deadline"

    def remaining(self):
        left = self.end - time.monotonic()
        if left <= 0:
            raise _Failure(self.passed)
        return left


class _Run:
    """One probe under way: its deadline, its socket and what it has read but not used."""

    def __init__(self, relay, timeout):
        self.relay, self.result = relay, Probe(relay, timeout, port=relay.destination_port)
        self.deadline = _Deadline(timeout)
        self.sock, self.buffer, self.tls = None, bytearray(), False
        self.features = {}
        user, password = relay.destination_username or "", relay.destination_password or ""
        plain = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        self.secrets = sorted(
            {
                plain,
                base64.b64encode(user.encode()).decode(),
                base64.b64encode(password.encode()).decode(),
                # Shorter ones would garble ordinary replies more than they could hide.
                *(secret for secret in (user, password) if len(secret) >= 4),
            }
            - {""},
            key=len,
            reverse=True,
        )

    def close(self):
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()

    # --- the steps -------------------------------------------------------------------------

    @contextlib.contextmanager
    def step(self, name):
        """Time the block as the step `name`; a failure inside it is recorded and ends the
        probe. The block calls done() to record an answer."""
        began = time.perf_counter()
        outcome = {"ok": False, "reply": "the step gave no outcome"}

        def done(ok, reply):
            outcome.update(ok=ok, reply=str(reply))
            if not ok:
                raise _Failure(str(reply))

        try:
            yield done
        except _Failure as failure:
            outcome.update(ok=False, reply=str(failure))
        except TimeoutError:
            outcome.update(ok=False, reply=self.deadline.passed)
        except ConnectionRefusedError:
            outcome.update(ok=False, reply="connection refused (nothing listens on that port)")
        except OSError as error:  # ssl.SSLError included
            outcome.update(ok=False, reply=str(error) or type(error).__name__)
        elapsed = (time.perf_counter() - began) * 1000
        self.result.steps.append(Step(name, outcome["ok"], elapsed, self._shown(outcome["reply"])))
        if not outcome["ok"]:
            raise _Stop

    def steps(self):
        relay = self.relay
        with self.step("connect") as done:
            self.connect()
            done((reply := self.reply()).code == 220, reply)
        with self.step("ehlo") as done:
            reply = self.command(f"EHLO {relay.source_hostname}")
            done(reply.code == 250, reply)
            self.features = _features(reply)
        if "STARTTLS" in self.features:
            with self.step("starttls") as done:
                reply = self.command("STARTTLS")
                done(reply.code == 220, reply)
                version = self.starttls()
                again = self.command(f"EHLO {relay.source_hostname}")
                if again.code != 250:
                    done(False, f"EHLO after STARTTLS: {again}")
                self.features = _features(again)
                done(True, f"{reply} ({version})")
        self.authenticate()
        with self.step("quit") as done:
            done((reply := self.command("QUIT")).code == 221, reply)

    def connect(self):
        relay, port = self.relay, self.relay.destination_port
        host = relay.destination_hostname
        source = ipaddress.ip_address(relay.source_ip)
        family = socket.AF_INET if source.version == 4 else socket.AF_INET6
        info = self.resolve(host, port, family)
        self.result.address = address = info[4][0]
        kind = _internal(address)
        if kind is not None and not settings.RELAYAPI_PROBE_ALLOW_PRIVATE:
            named = f"{host} is" if host == address else f"{host} resolves to {address},"
            raise _Failure(f"refused: {named} {kind} address ({SETTING} allows it)")
        self.sock = socket.socket(info[0], info[1], info[2])
        try:
            # Mail leaves from the relay's source IP.
            self.sock.bind((relay.source_ip, 0))
        except OSError as error:
            if error.errno == 99:  # EADDRNOTAVAIL
                raise _Failure(
                    f"cannot send from {relay.source_ip}: not an address of this host"
                ) from None
            raise
        self.sock.settimeout(self.deadline.remaining())
        self.sock.connect(info[4])

    def resolve(self, host, port, family):
        """The first address `host` resolves to, looked up once. getaddrinfo cannot be given a
        timeout: it runs in a thread, and the probe stops waiting for it at the deadline."""
        answer = {}

        def look_up():
            try:
                answer["infos"] = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
            except OSError as error:
                answer["error"] = error

        thread = threading.Thread(target=look_up, name=f"probe: resolve {host}", daemon=True)
        thread.start()
        thread.join(max(self.deadline.end - time.monotonic(), 0))
        if thread.is_alive():
            raise _Failure(
                f"cannot resolve {host}: no answer within the probe's "
                f"{self.deadline.seconds:g} s deadline"
            )
        if "error" in answer:
            error = answer["error"]
            raise _Failure(f"cannot resolve {host}: {error.strerror or error}")
        if not answer["infos"]:
            raise _Failure(f"cannot resolve {host}: no address")
        return answer["infos"][0]

    def starttls(self):
        # What the server sent in clear after its 220 must not pass for what it says
        # encrypted (CVE-2011-0411 and its kin).
        self.buffer.clear()
        # As Postfix's "encrypt" level: encrypted, the certificate not verified.
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        host = self.relay.destination_hostname
        # The handshake as a whole runs within the socket's timeout (CPython's ssl module keeps
        # one deadline across its reads), which is what is left of the probe's.
        self.sock.settimeout(self.deadline.remaining())
        self.sock = context.wrap_socket(self.sock, server_hostname=host)  # the name for SNI
        self.tls = True
        return self.sock.version()

    def authenticate(self):
        relay = self.relay
        user, password = relay.destination_username, relay.destination_password
        if relay.secret_arn:
            with self.step("auth") as done:
                done(False, "skipped: the credentials are in AWS Secrets Manager")
        if user is None and password is None:
            return  # no credentials: no AUTH step
        with self.step("auth") as done:
            if not self.tls:
                done(False, NO_TLS)
            offered = self.features.get("AUTH", "").upper().split()
            mechanism = next((m for m in ("PLAIN", "LOGIN") if m in offered), None)
            if mechanism is None:
                done(False, f"the server offers no AUTH PLAIN or LOGIN ({' '.join(offered)})")
            user, password = (user or "").encode(), (password or "").encode()
            # One attempt with one mechanism, as Postfix makes.
            if mechanism == "PLAIN":
                blob = base64.b64encode(b"\0" + user + b"\0" + password).decode()
                reply = self.command(f"AUTH PLAIN {blob}")
            else:
                reply = self.command("AUTH LOGIN")
                for value in (user, password):
                    if reply.code != 334:
                        break
                    reply = self.command(base64.b64encode(value).decode())
            done(reply.code == 235, reply)

    # --- the wire --------------------------------------------------------------------------

    def command(self, line):
        self.sock.settimeout(self.deadline.remaining())
        self.sock.sendall(line.encode() + b"\r\n")
        return self.reply()

    def reply(self):
        """The server's next reply; a _Failure unless it has the shape of SMTP."""
        lines, size, code = [], 0, None
        while True:
            raw = self._line()
            size += len(raw)
            if size > MAX_REPLY:
                raise _Failure(TOO_LONG)
            match = _LINE.fullmatch(raw)
            if match is None or (code is not None and match[1] != code):
                raise _Failure(NOT_SMTP)
            code = match[1]
            try:
                text = (match[3] or b"").decode()
            except UnicodeDecodeError:
                raise _Failure(NOT_SMTP) from None
            # Printable: no control characters (terminal escapes), no bidirectional overrides.
            if not text.replace("\t", " ").isprintable():
                raise _Failure(NOT_SMTP)
            lines.append(text)
            if match[2] != b"-":
                return _Reply(int(code), lines)

    def _line(self):
        """One line, its newline included; every read waits at most for what is left of the
        deadline, and the buffer never holds more than a line and one read."""
        while True:
            end = self.buffer.find(b"\n")
            if end >= 0:
                line = bytes(self.buffer[: end + 1])
                del self.buffer[: end + 1]
                if len(line) > MAX_LINE:
                    raise _Failure(TOO_LONG)
                return line
            if len(self.buffer) > MAX_LINE:
                raise _Failure(TOO_LONG)
            self.sock.settimeout(self.deadline.remaining())
            chunk = self.sock.recv(MAX_REPLY)
            if not chunk:
                raise _Failure("the server closed the connection")
            self.buffer += chunk

    def _shown(self, text):
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


def _features(reply):
    """EHLO's extensions: {"STARTTLS": "", "AUTH": "PLAIN LOGIN", ...}."""
    features = {}
    for line in reply.lines[1:]:
        if match := _FEATURE.match(line):
            features.setdefault(match[1].upper(), match[2].strip())
    return features


_KINDS = [
    ("an unspecified", "is_unspecified"),
    ("a loopback", "is_loopback"),
    ("a link-local", "is_link_local"),
    ("a multicast", "is_multicast"),
    ("a reserved", "is_reserved"),
    ("a private", "is_private"),
    ("a private", "is_site_local"),
]


def _internal(address):
    """What kind of internal address `address` is ("a loopback", ...), None for a public one."""
    ip = ipaddress.ip_address(address)
    ip = getattr(ip, "ipv4_mapped", None) or ip  # ::ffff:127.0.0.1 is loopback
    for kind, test in _KINDS:
        if getattr(ip, test, False):
            return kind
    return None if ip.is_global else "a non-public"
