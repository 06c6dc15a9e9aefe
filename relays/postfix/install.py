"""`render_postfix --apply`: the rendering installed into a running Postfix, all or nothing, one
apply at a time, each in the audit log.

Steps, each named when it fails:
  lock     `relayapi.lock` in the configuration directory, held (flock) for the whole run;
  render   the store compiled (relays.postfix.render);
  write    the tables into a new private directory beside the live one (in `relayapi.d/`, a
           random name no one else can have prepared), `relayapi.d/<digest>` once checked;
  postmap  each table compiled there, and every transport_maps entry looked up once;
  check    main.cf and master.cf with the new RelayAPI sections, in a scratch copy of the
           configuration directory pointing at the new tables: `postfix check` and `postconf`;
  swap     the `relayapi` link moved to the new directory, main.cf and master.cf replaced
           (each an atomic rename);
  reload   `postfix reload`;
  flush    `postqueue -f`: mail held for a service no longer held (a resumed IP) goes out.
A failure before the swap leaves the running configuration untouched (the new directory is
removed); a failed swap or reload puts the previous files and link back (and reloads them) and
removes the new generation. Every apply, whatever came of it, is an audit entry (action
`apply`, type `postfix`, named by the configuration directory): its outcome, the step it
stopped at, the generation, and whether the running configuration changed.

A second apply waits for the lock rather than refusing at once: it renders only once it holds
the lock, so what ends up installed is the store as the later apply saw it, and two applies
started together (an operator and a script) both succeed, one after the other. The wait is
bounded (then it refuses, naming the process holding the lock), since an apply stuck in a
Postfix command holds the lock for as long as that command's timeout.

RelayAPI owns a section of main.cf and of master.cf between BEGIN/END markers (appended the first
time), and the `relayapi` link with the directory it points to; nothing else is edited.
"""

import contextlib
import fcntl
import hashlib
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from relays import audit
from relays.models import AuditEntry
from relays.postfix import files
from relays.postfix.render import RenderError, render

BEGIN = "# BEGIN RelayAPI (manage.py render_postfix --apply): do not edit; render again.\n"
END = "# END RelayAPI\n"
LINK, GENERATIONS, LOCK = "relayapi", "relayapi.d", "relayapi.lock"
TIMEOUT = 60  # seconds, each Postfix command
LOCK_WAIT = 60  # seconds a second apply waits for the first (a normal apply takes a few)
UNTOUCHED = "nothing changed"


_FAILURE = re.compile(r": (fatal|panic|error): ")


class StepFailed(Exception):
    """An apply stopped at `step`; `done` says what it had done to the running Postfix, and
    `changed` whether its configuration is no longer what it was."""

    def __init__(self, step, reason, done=UNTOUCHED, changed=False):
        super().__init__(f"{done}: {step} failed: {reason}")
        self.step, self.reason, self.changed = step, reason, changed


class Busy(StepFailed):
    """Another apply holds the lock; nothing was done."""

    def __str__(self):
        return f"{UNTOUCHED}: {self.reason}"


@dataclass
class Postfix:
    """Where the running Postfix is and how to run its commands."""

    config_dir: Path
    sbin: Path = Path("/usr/sbin")

    def run(self, step, *args, ok=(0,)):
        """Run a Postfix command; its output. StepFailed when it exits with a status not in
        `ok` or reports a fatal error (some commands report and still exit 0)."""
        command = [str(self.sbin / args[0]), *map(str, args[1:])]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise StepFailed(step, f"{' '.join(command)}: {error}") from None
        output = (done.stdout + done.stderr).strip()
        if done.returncode not in ok or _FAILURE.search(output):
            raise StepFailed(step, f"{' '.join(command)}: {output or f'exit {done.returncode}'}")
        return output


def with_section(text, section):
    """`text` (main.cf or master.cf) with RelayAPI's section replaced by `section`."""
    if BEGIN in text and END in text.split(BEGIN, 1)[1]:
        before, rest = text.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
    else:
        before, after = text if text.endswith("\n") or not text else text + "\n", ""
    return f"{before}{BEGIN}{section}{END}{after}"


def apply(postfix, log=print, wait=LOCK_WAIT):
    """Render, then install into `postfix` step by step while holding its lock (waiting for it
    at most `wait` seconds); the rendering. StepFailed names the failing step and says what was
    done. Either way the apply is audited."""
    config = Path(postfix.config_dir)
    generation = None
    try:
        with locked(config, wait, log):
            try:
                rendering = render(str(config / LINK))
            except RenderError as error:
                raise StepFailed("render", str(error)) from None
            generation = digest(rendering)
            previous = _install(postfix, rendering, generation, log)
    except StepFailed as failed:
        # A transaction of its own, committed (a command runs in autocommit) before the error
        # goes on: the failure is on record whatever the caller does next.
        _audit(
            config,
            outcome="failed",
            step=failed.step,
            generation=generation,
            changed=failed.changed,
            message=str(failed),
        )
        raise
    _audit(
        config,
        outcome="applied",
        step="flush",
        generation=generation,
        previous=previous,
        changed=generation != previous,
    )
    return rendering


def digest(rendering):
    """The generation's name: a hash of everything the rendering writes."""
    return hashlib.sha256(
        (rendering.main_cf + rendering.master_cf).encode()
        + b"".join(
            name.encode() + content for name, (content, _) in sorted(rendering.files.items())
        )
    ).hexdigest()[:16]


@contextlib.contextmanager
def locked(config_dir, wait=LOCK_WAIT, log=None):
    """Hold the apply lock of the Postfix configured in `config_dir` (flock on `relayapi.lock`
    there, which holds the holder's pid); Busy when another apply still holds it after `wait`
    seconds. The lock goes with the process: a killed apply never leaves it taken."""
    path = Path(config_dir) / LOCK
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as error:
        raise StepFailed("lock", str(error)) from None
    try:
        deadline, waited = time.monotonic() + wait, False
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Busy(
                        "lock",
                        f"another apply is running (pid {_holder(descriptor)}); "
                        f"gave up after waiting {wait:g} s for {path}",
                    ) from None
                waited = True
                time.sleep(0.05)
        if waited and log:
            log(f"lock: waited for another apply (pid {_holder(descriptor)})")
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(descriptor)  # releases the lock; the file stays (removing it would race)


def _holder(descriptor):
    return os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "unknown"


def _audit(config, **after):
    with transaction.atomic():
        audit.record(AuditEntry.Action.APPLY, "postfix", None, str(config), None, after)


def _install(postfix, rendering, generation, log):
    """Install `rendering` as `generation`; the generation it replaced (None the first time)."""
    config = Path(postfix.config_dir)
    live, generations = config / LINK, config / GENERATIONS
    try:
        generations.mkdir(mode=0o755, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f"{generation}.new-", dir=generations))
    except OSError as error:
        raise StepFailed("write", str(error)) from None
    target, previous = generations / generation, _current(live)
    try:
        _write_and_check(postfix, rendering, stage, live, log)
        if generation == previous:  # nothing changed since the live generation: it stays
            shutil.rmtree(stage)
        else:
            _remove(target)  # an older generation of the same content, or a leftover
            os.rename(stage, target)
    except OSError as error:
        _remove(stage)
        raise StepFailed("write", str(error)) from None
    except BaseException:
        _remove(stage)
        raise
    try:
        _swap_and_reload(postfix, rendering, target, log)
    except StepFailed as failed:
        if not failed.changed and generation != previous:
            _remove(target)
        raise
    _prune(generations, keep={generation, previous})
    try:
        postfix.run("flush", "postqueue", "-c", config, "-f")
    except StepFailed as failed:
        raise StepFailed(
            "flush",
            f"{failed.reason}; run `postqueue -f` to send mail held for a resumed service",
            done=f"installed generation {generation} and reloaded Postfix",
            changed=generation != previous,
        ) from None
    log("flush: the queue flushed (held mail of services no longer held goes out)")
    return previous


def _write_and_check(postfix, rendering, stage, live, log):
    try:
        files.write_into(rendering, stage)
    except OSError as error:
        raise StepFailed("write", str(error)) from None
    log(f"write: {len(rendering.files)} tables in {stage}")
    for name in rendering.maps:
        postfix.run("postmap", "postmap", "-c", postfix.config_dir, f"hash:{stage / name}")
    log(f"postmap: {len(rendering.maps)} tables")
    scratch = stage / "check"
    try:
        scratch.mkdir()
        main, master = _configuration(postfix, rendering, str(live), str(stage))
        (scratch / "main.cf").write_text(main)
        (scratch / "master.cf").write_text(master)
        _settled(scratch / "main.cf", scratch / "master.cf")
    except OSError as error:
        raise StepFailed("check", str(error)) from None
    # `postfix check` fails on syntax only; an unknown `-o` parameter is a warning. Any warning
    # the running configuration does not already give is taken as a failure.
    known = postfix.run("check", "postfix", "-c", postfix.config_dir, "check")
    new = [
        line
        for line in postfix.run("check", "postfix", "-c", scratch, "check").splitlines()
        if line.replace(str(scratch), str(postfix.config_dir)) not in known
    ]
    if new:
        raise StepFailed("check", "; ".join(new))
    postfix.run("check", "postconf", "-c", scratch, "-M")
    for entry in _transport_maps(postfix, scratch):
        # Opens every table of the entry (status 1: the key is simply not found).
        postfix.run("check", "postmap", "-c", scratch, "-q", "relayapi.invalid", entry, ok=(0, 1))
    shutil.rmtree(scratch)
    log("check: postfix check, master.cf and every transport map passed")


def _transport_maps(postfix, scratch):
    """The tables of transport_maps and sender_dependent_default_transport_maps in the scratch
    main.cf, one `type:{...}` entry each."""
    value = postfix.run(
        "check",
        "postconf",
        "-c",
        scratch,
        "-h",
        "transport_maps",
        "sender_dependent_default_transport_maps",
    ).replace("\n", ", ")
    entries, depth, current = [], 0, ""
    for char in value:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            entries.append(current.strip())
            current = ""
        else:
            current += char
    return [e for e in [*entries, current.strip()] if e]


def _configuration(postfix, rendering, live, stage):
    """(main.cf, master.cf) of the running configuration with RelayAPI's new sections; with
    `stage`, pointing at the tables in `stage` rather than at the live link."""
    config = Path(postfix.config_dir)
    main = with_section((config / "main.cf").read_text(), rendering.main_cf)
    master = with_section((config / "master.cf").read_text(), rendering.master_cf)
    return main.replace(f"{live}/", f"{stage}/"), master.replace(f"{live}/", f"{stage}/")


def _current(live):
    return os.readlink(live).rsplit("/", 1)[-1] if live.is_symlink() else None


def _settled(*paths):
    """Date files a few seconds back: Postfix commands wait (300 ms at a time) until main.cf is
    at least a second old, "to let it settle", which made each step of an apply take ~2 s."""
    past = time.time() - 5
    for path in paths:
        os.utime(path, (past, past))


def _replace(path, content):
    """`path` replaced by `content` in one rename, keeping its mode; the temporary file beside
    it has a name of its own (mkstemp), never one left over or prepared by someone else."""
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.relayapi-", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(content)
        shutil.copymode(path, temporary)
        _settled(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _link(live, target):
    temporary = live.with_name(f".{live.name}.relayapi-{secrets.token_hex(8)}")
    temporary.symlink_to(target)  # fails rather than reuse a name that exists
    try:
        os.replace(temporary, live)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _swap_and_reload(postfix, rendering, target, log):
    config = Path(postfix.config_dir)
    live = config / LINK
    try:
        old = (
            (config / "main.cf").read_text(),
            (config / "master.cf").read_text(),
            os.readlink(live) if live.is_symlink() else None,
        )
        main, master = _configuration(postfix, rendering, str(live), str(live))
    except OSError as error:
        raise StepFailed("swap", str(error)) from None
    try:
        _link(live, f"{GENERATIONS}/{target.name}")
        _replace(config / "master.cf", master)
        _replace(config / "main.cf", main)
    except OSError as error:
        raise _put_back(config, old, "swap", str(error)) from None
    log(f"swap: {live} -> {target}")
    try:
        postfix.run("reload", "postfix", "-c", config, "reload")
    except StepFailed as failed:
        raise _put_back(config, old, "reload", failed.reason, postfix) from None
    log("reload: Postfix reloaded")


def _put_back(config, old, step, reason, postfix=None):
    """The StepFailed of `step` once the previous files and link are back (and, given
    `postfix`, reloaded), saying whether they could be."""
    try:
        _restore(config, *old)
    except OSError as error:
        return StepFailed(
            step,
            f"{reason}; putting the previous configuration back failed too ({error}): "
            f"check main.cf, master.cf and the {LINK} link",
            done=f"{config} partly changed",
            changed=True,
        )
    if postfix is None:
        return StepFailed(step, f"{reason}; the previous configuration was put back")
    try:
        postfix.run("reload", "postfix", "-c", config, "reload")
    except StepFailed as again:
        return StepFailed(
            step,
            f"{reason}; the previous configuration was put back, but reloading it failed too "
            f"({again.reason})",
        )
    return StepFailed(step, f"{reason}; the previous configuration was put back and reloaded")


def _restore(config, old_main, old_master, old_target):
    _replace(config / "main.cf", old_main)
    _replace(config / "master.cf", old_master)
    live = config / LINK
    if old_target is None:
        live.unlink(missing_ok=True)
    else:
        _link(live, old_target)


def _prune(generations, keep):
    """Old generations go, and leftovers of applies that were killed; the live one and the
    previous one stay (for a quick look back)."""
    for entry in generations.iterdir():
        if entry.name not in keep:
            _remove(entry)


def _remove(path):
    """Remove a directory with what is in it, or a file or link (never followed)."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        with contextlib.suppress(OSError):
            path.unlink()
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)
