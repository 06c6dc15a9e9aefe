"""A real Postfix for tests: a private instance and aiosmtpd sinks, all on 127.0.0.0/8.

`PostfixInstance` runs a second Postfix beside the (unconfigured) system one, as root, with
`postfix -c DIR start`: its own config directory, queue directory, data directory and log file
under one temporary directory, removed by `destroy()`. Nothing it does reaches /etc/postfix,
/var/spool/postfix or /var/lib/postfix, and no mail can leave the machine: `default_transport`
and `relay_transport` are `error:` transports (with the default `smtpd_reject_unlisted_recipient
= yes` the injection smtpd even refuses such recipients at RCPT time, so nothing bounces), DNS is
off, and every next hop a test writes is `[127.0.0.x]:port`.

`Sink` is an aiosmtpd server on a free 127.0.0.1 port that records, for each message, the peer
address (the source address Postfix bound to), the HELO/EHLO name, the AUTH login, whether the
session was under STARTTLS, the envelope and the arrival time, and the maximum number of
transactions (MAIL FROM to the end of DATA) it saw at once.
"""

import asyncio
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult

from deploy.nginx.loopback import self_signed_certificate

POSTFIX = "/usr/sbin/postfix"
POSTCONF = "/usr/sbin/postconf"
POSTMAP = "/usr/sbin/postmap"
POSTQUEUE = "/usr/sbin/postqueue"
POSTSUPER = "/usr/sbin/postsuper"
COMMAND_TIMEOUT = 30
NO_DELIVERY = "error:no external delivery in tests"


def free_port(host="127.0.0.1"):
    """A TCP port nobody listens on right now (the kernel's pick; bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_until(predicate, timeout, interval=0.05, message="condition"):
    """Poll `predicate` until it returns something truthy; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


# --- the Postfix instance ------------------------------------------------------------------


class PostfixError(Exception):
    def __init__(self, args, result):
        super().__init__(
            f"{' '.join(map(str, args))} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
        self.result = result


class PostfixInstance:
    """A private Postfix instance under `root` (a fresh temporary directory).

    The base configuration (`base_main`, `base_master`) is what every test starts from;
    `configure()` adds a test's parameters and master.cf lines to it and reloads.
    """

    def __init__(self, root=None):
        self.root = Path(root or tempfile.mkdtemp(prefix="relayapi-postfix-"))
        # The daemons run as the postfix user: the directories above the queue must be
        # traversable (mkdtemp makes 0700).
        self.root.chmod(0o755)
        self.config_dir = self.root / "etc"
        self.queue_dir = self.root / "queue"
        # Created by `postfix start` (post-install create-missing) owned by postfix: a
        # pre-made root-owned one makes master fail on its lock file.
        self.data_dir = self.root / "data"
        self.maps_dir = self.root / "maps"
        self.log_path = self.root / "maillog"
        self.port = free_port()
        self.started = None
        self.config_dir.mkdir()
        self.queue_dir.mkdir(mode=0o755)
        self.maps_dir.mkdir()
        self.extra_main = {}
        self.extra_master = ""
        self._loaded = None  # the (main.cf, master.cf) texts the running master last read
        self._write_config()

    # -- configuration

    @property
    def base_main(self):
        return {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            # postfix-files (the list post-install creates the queue directories from) is the
            # package's; nothing there is written to.
            "meta_directory": "/etc/postfix",
            "myhostname": "relayapi-test.localhost",
            "mydomain": "localhost",
            "myorigin": "$myhostname",
            "mydestination": "",
            "relay_domains": "",
            "mynetworks": "127.0.0.0/8",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "default_transport": NO_DELIVERY,
            "relay_transport": NO_DELIVERY,
            "smtp_dns_support_level": "disabled",
            "smtp_host_lookup": "native",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            "maillog_file": str(self.log_path),
            # maillog_file must lie under one of these (the default allows /var and stdout).
            "maillog_file_prefixes": str(self.root),
            "smtputf8_enable": "no",
            "biff": "no",
            "smtp_tls_loglevel": "1",
        }

    @property
    def base_master(self):
        # chroot is "n" everywhere: nothing needs copying into a jail (SASL plugins, certs).
        return "\n".join(
            [
                f"127.0.0.1:{self.port} inet n - n - - smtpd",
                "pickup    unix  n - n 60    1 pickup",
                "cleanup   unix  n - n -     0 cleanup",
                "qmgr      unix  n - n 300   1 qmgr",
                "tlsmgr    unix  - - n 1000? 1 tlsmgr",
                "rewrite   unix  - - n -     - trivial-rewrite",
                "bounce    unix  - - n -     0 bounce",
                "defer     unix  - - n -     0 bounce",
                "trace     unix  - - n -     0 bounce",
                "verify    unix  - - n -     1 verify",
                "flush     unix  n - n 1000? 0 flush",
                "proxymap  unix  - - n -     - proxymap",
                "smtp      unix  - - n -     - smtp",
                "relay     unix  - - n -     - smtp",
                "showq     unix  n - n -     - showq",
                "error     unix  - - n -     - error",
                "retry     unix  - - n -     - error",
                "discard   unix  - - n -     - discard",
                "anvil     unix  - - n -     1 anvil",
                "scache    unix  - - n -     1 scache",
                "postlog   unix-dgram n - n - 1 postlogd",
                "",
            ]
        )

    def _config_texts(self, main=None, master="", main_tail=""):
        main = {**self.base_main, **(main or {})}
        extra = master.strip("\n")
        return {
            "main.cf": "".join(f"{name} = {value}\n" for name, value in main.items()) + main_tail,
            "master.cf": self.base_master + (extra + "\n" if extra else ""),
        }

    def _write_config(self):
        _write_files(self.config_dir, self._config_texts(self.extra_main, self.extra_master))

    def _config_on_disk(self):
        return tuple((self.config_dir / name).read_text() for name in ("main.cf", "master.cf"))

    def configure(self, main=None, master="", reload=True):
        """The base configuration plus these main.cf parameters and master.cf lines."""
        self.extra_main = dict(main or {})
        self.extra_master = master
        self._write_config()
        if reload:
            self.reload()

    def write_map(self, name, entries, mode=0o644, postmap=True):
        """A lookup table under maps/: `entries` is a dict or a list of (key, value). Returns the
        `hash:PATH` to name it by (the plain path when postmap is False)."""
        items = entries.items() if isinstance(entries, dict) else entries
        path = self.maps_dir / name
        path.write_text("".join(f"{key} {value}\n" for key, value in items))
        path.chmod(mode)
        if not postmap:
            return str(path)
        self.postmap(path)
        return f"hash:{path}"

    # -- commands

    def _run(self, args, check=True, timeout=COMMAND_TIMEOUT):
        result = subprocess.run(
            [str(a) for a in args], capture_output=True, text=True, timeout=timeout
        )
        if check and result.returncode != 0:
            raise PostfixError(args, result)
        return result

    def postfix(self, *args, check=True):
        return self._run([POSTFIX, "-c", self.config_dir, *args], check=check)

    def postconf(self, *args, check=True):
        """`postconf -c DIR ARGS`: its standard output (e.g. postconf("-h", "queue_directory"))."""
        return self._run([POSTCONF, "-c", self.config_dir, *args], check=check).stdout

    def postmap(self, *args, check=True):
        return self._run([POSTMAP, "-c", self.config_dir, *args], check=check)

    def check(self):
        """`postfix -c DIR check`, not raising: its CompletedProcess."""
        return self.postfix("check", check=False)

    def master_pid(self):
        """The pid of this instance's running master process, or None."""
        try:
            pid = int((self.queue_dir / "pid" / "master.pid").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None
        try:
            # The master runs from the queue directory: a recycled pid is someone else.
            if Path(f"/proc/{pid}/cwd").resolve() != self.queue_dir.resolve():
                return None
        except OSError:
            return None
        return pid if _alive(pid) else None

    def check_config(self, main=None, master="", main_tail=""):
        """`postfix -c DIR check` of the base configuration plus these, in a scratch config
        directory of its own (the running instance is not touched; several can run at once).
        `main_tail` is raw text appended to main.cf. Returns the CompletedProcess."""
        scratch = Path(tempfile.mkdtemp(prefix="check-", dir=self.root))
        scratch.chmod(0o755)
        for name in ("etc", "queue"):
            (scratch / name).mkdir(mode=0o755)
        paths = {
            "queue_directory": str(scratch / "queue"),
            "data_directory": str(scratch / "data"),
        }
        _write_files(
            scratch / "etc", self._config_texts({**(main or {}), **paths}, master, main_tail)
        )
        return self._run([POSTFIX, "-c", scratch / "etc", "check"], check=False)

    def is_running(self):
        return self.master_pid() is not None

    def start(self):
        began = time.monotonic()
        self._loaded = self._config_on_disk()
        self.postfix("start")
        wait_until(self._smtpd_answers, 10, message=f"smtpd on 127.0.0.1:{self.port}")
        self.started = time.monotonic() - began

    def _smtpd_answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def reload(self, settle=0.2):
        """`postfix reload`, then wait until the master has acted on it (a new qmgr runs: the
        master restarts every service on a reload) and give the old daemons `settle` seconds
        to exit (they finish at their earliest convenience). Not the master's "reload" log line:
        under load it was seen to go missing (the postlog service restarts too)."""
        before = self.daemons("qmgr")
        loading = self._config_on_disk()
        self.postfix("reload")
        self._loaded = loading
        self.wait_new_daemon("qmgr", before)
        time.sleep(settle)

    def daemons(self, name):
        """The pids of this instance's running `name` daemons (children of its master)."""
        master = self.master_pid()
        if master is None:
            return set()
        pids = set()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            command = stat[stat.index("(") + 1 : stat.rindex(")")]
            state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
            if int(ppid) == master and command == name and state != "Z":
                pids.add(int(entry.name))
        return pids

    def wait_new_daemon(self, name, before, timeout=10):
        """Wait until a `name` daemon runs that is not among the pids `before`."""
        return wait_until(
            lambda: self.daemons(name) - before, timeout, message=f"a new {name} daemon"
        )

    def stop(self):
        """`postfix stop` (it waits up to 5 s, then kills the process group), or, when that
        command cannot run (a broken main.cf), SIGTERM to the master: either way the master
        and its daemons are gone on return."""
        pid = self.master_pid()
        if pid is None:
            return
        self.postfix("stop", check=False)
        if not _alive(pid):
            return
        os.kill(pid, signal.SIGTERM)  # the master stops its children, then exits
        try:
            wait_until(lambda: not _alive(pid), 10, message=f"master {pid} to exit")
        except AssertionError:
            os.killpg(pid, signal.SIGKILL)
            wait_until(lambda: not _alive(pid), 5, message=f"master {pid} to die")

    def destroy(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- mail

    def send(self, mail_from, rcpt, subject="test", body="test message\n"):
        """One message by SMTP to the injection smtpd. Returns the refused recipients
        ({address: (code, text)}; empty when all were accepted)."""
        with self.smtp() as client:
            return _send_one(client, mail_from, rcpt, subject, body)

    def send_many(self, messages):
        """Several (mail_from, rcpt, subject) messages over one SMTP session; returns the
        refused recipients of all of them."""
        refused = {}
        with self.smtp() as client:
            for mail_from, rcpt, subject in messages:
                refused.update(_send_one(client, mail_from, rcpt, subject, "test message\n"))
        return refused

    def smtp(self):
        return smtplib.SMTP("127.0.0.1", self.port, local_hostname="injector.test", timeout=30)

    def queue(self):
        """The queue as `postqueue -j` reports it: one dict per message."""
        out = self._run([POSTQUEUE, "-c", self.config_dir, "-j"]).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def flush(self):
        self._run([POSTQUEUE, "-c", self.config_dir, "-f"])

    def clear_queue(self):
        self._run([POSTSUPER, "-c", self.config_dir, "-d", "ALL"])

    def wait_queue_empty(self, timeout=15):
        return wait_until(lambda: not self.queue() or None, timeout, message="an empty queue")

    # -- log

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, pattern, timeout=10, start=0):
        """The first match of `pattern` (a regex) in the log after character `start`."""
        regex = re.compile(pattern)
        return wait_until(lambda: regex.search(self.log(), start), timeout, message=pattern)

    # -- between tests

    def reset(self):
        """Back to the base configuration with an empty queue and no maps: anything else in the
        config directory (e.g. what `render_postfix --apply` installed there) is removed, and
        the instance reloaded unless it already runs the base configuration; restarted if a
        test left it stopped."""
        # Files changed by someone else (who may have reloaded them): reload in any case.
        foreign = self._config_on_disk() != self._loaded
        self.extra_main, self.extra_master = {}, ""
        for entry in self.config_dir.iterdir():
            if entry.name not in ("main.cf", "master.cf"):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        self._write_config()
        shutil.rmtree(self.maps_dir, ignore_errors=True)
        self.maps_dir.mkdir()
        if self.is_running():
            self.clear_queue()
            if foreign or self._config_on_disk() != self._loaded:
                self.reload(settle=0)  # a test that configures reloads (and settles) again
        else:
            self.stop()  # a master that died half-way
            self.start()
            self.clear_queue()


def _write_files(directory, texts):
    for name, text in texts.items():
        path = directory / name
        path.write_text(text)
        # Postfix reads main.cf only once it is at least a second old (it dozes 300 ms at a
        # time "to let it settle"): a file dated now makes every postfix command take ~2 s.
        past = time.time() - 5
        os.utime(path, (past, past))


def smtp_service(name, **options):
    """A master.cf line for an smtp(8) client service `name` with these `-o name=value`s."""
    overrides = "".join(f" -o {key}={value}" for key, value in options.items())
    return f"{name} unix - - n - - smtp{overrides}\n"


def _alive(pid):
    """True while the process exists and is not a zombie (init here may not reap the master)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return not re.search(r"^State:\s+Z", status, re.M)


def _send_one(client, mail_from, rcpt, subject, body):
    message = EmailMessage()
    message["From"] = mail_from or "mailer-daemon@injector.test"
    message["To"] = rcpt if isinstance(rcpt, str) else ", ".join(rcpt)
    message["Subject"] = subject
    message.set_content(body)
    try:
        return client.send_message(message, from_addr=mail_from, to_addrs=rcpt)
    except smtplib.SMTPRecipientsRefused as error:
        # A refused transaction leaves the session usable (smtplib sent RSET).
        return error.recipients


# --- sinks --------------------------------------------------------------------------------


def server_tls_context():
    """An SSLContext serving a self-signed certificate for 127.0.0.1 (the end-to-end tests'
    own, deploy/nginx/loopback.py); the PEM files exist only while it loads them."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="relayapi-sink-tls-") as directory:
        context.load_cert_chain(*self_signed_certificate(directory))
    return context


@dataclass
class Received:
    """One message as the sink got it."""

    peer: str
    peer_port: int
    helo: str | None
    tls: bool
    mechanism: str | None
    login: str | None
    password: str | None
    mail_from: str
    rcpt_tos: list
    data: bytes
    arrived: float  # time.monotonic()
    subject: str | None = None


@dataclass
class AuthAttempt:
    mechanism: str
    login: str
    password: str
    success: bool


@dataclass
class _Transactions:
    active: set = field(default_factory=set)
    max: int = 0


class _SinkSMTP(SMTP):
    def connection_lost(self, error):
        # A transaction cut off by a dropped connection ends here.
        self.event_handler.end_transaction(self)
        super().connection_lost(error)


class _SinkController(Controller):
    def __init__(self, handler, *, auth_plain_ok, **kwargs):
        super().__init__(handler, **kwargs)
        self.auth_plain_ok = auth_plain_ok

    def factory(self):
        smtp = _SinkSMTP(self.handler, **self.SMTP_kwargs)
        if self.auth_plain_ok:
            # AUTH without STARTTLS, set after construction: passing auth_require_tls=False
            # with auth_required=True makes aiosmtpd warn on every connection.
            smtp._auth_require_tls = False
        return smtp


class Sink:
    """An SMTP server on 127.0.0.1 that records what arrives.

    credentials: (login, password) accepted by AUTH PLAIN and LOGIN (others get 535); None
        offers no AUTH. auth_required: MAIL without AUTH gets 530. starttls: offer STARTTLS
        with a self-signed certificate (AUTH is then offered only after it). data_delay:
        seconds each DATA takes before its 250 (to make transactions overlap).
    """

    def __init__(
        self,
        *,
        credentials=None,
        auth_required=False,
        starttls=False,
        data_delay=0.0,
        hostname="sink.relayapi.test",
    ):
        self.credentials = credentials
        self.data_delay = data_delay
        self.port = free_port()
        self.messages = []
        self.auth_attempts = []
        self._transactions = _Transactions()
        self._cond = threading.Condition()
        kwargs = {"hostname": "127.0.0.1", "port": self.port, "server_hostname": hostname}
        if credentials is not None:
            kwargs["authenticator"] = self._authenticate
        kwargs["auth_required"] = auth_required
        if starttls:
            kwargs["tls_context"] = server_tls_context()
        self._controller = _SinkController(
            self, auth_plain_ok=credentials is not None and not starttls, **kwargs
        )

    def start(self):
        self._controller.start()
        return self

    def stop(self):
        self._controller.stop()

    # -- what arrived

    @property
    def max_concurrent(self):
        with self._cond:
            return self._transactions.max

    def wait_for(self, count, timeout=20):
        """The messages once at least `count` arrived; AssertionError after `timeout` s."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"sink 127.0.0.1:{self.port}: {len(self.messages)} of {count} "
                        f"messages after {timeout}s"
                    )
                self._cond.wait(left)
            return list(self.messages)

    def received(self):
        with self._cond:
            return list(self.messages)

    # -- aiosmtpd hooks (run in the controller's thread)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        login = auth_data.login.decode(errors="replace")
        password = auth_data.password.decode(errors="replace")
        ok = (login, password) == tuple(self.credentials)
        with self._cond:
            self.auth_attempts.append(AuthAttempt(mechanism, login, password, ok))
        session.relayapi_auth = (mechanism, login, password) if ok else None
        return AuthResult(success=ok, handled=False)  # a failure answers 535

    def begin_transaction(self, server):
        with self._cond:
            self._transactions.active.add(server)
            self._transactions.max = max(self._transactions.max, len(self._transactions.active))

    def end_transaction(self, server):
        with self._cond:
            self._transactions.active.discard(server)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        self.begin_transaction(server)
        return "250 OK"

    async def handle_RSET(self, server, session, envelope):
        self.end_transaction(server)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        mechanism, login, password = getattr(session, "relayapi_auth", None) or (None,) * 3
        content = envelope.original_content or envelope.content or b""
        message = Received(
            peer=session.peer[0],
            peer_port=session.peer[1],
            helo=session.host_name,
            tls=session.ssl is not None,
            mechanism=mechanism,
            login=login,
            password=password,
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            data=content,
            arrived=time.monotonic(),
            subject=BytesHeaderParser().parsebytes(content).get("Subject"),
        )
        with self._cond:
            self.messages.append(message)
            self._transactions.active.discard(server)
            self._cond.notify_all()
        return "250 2.0.0 Ok: queued"
