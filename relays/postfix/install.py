"""`render_postfix --apply`: the rendering installed into a running Postfix, all or nothing.

Steps, each named when it fails:
  write    the tables into a new directory beside the live one (`relayapi.d/<digest>`);
  postmap  each table compiled there, and every transport_maps entry looked up once;
  check    main.cf and master.cf with the new RelayAPI sections, in a scratch copy of the
           configuration directory pointing at the new tables: `postfix check` and `postconf`;
  swap     the `relayapi` link moved to the new directory, main.cf and master.cf replaced
           (each an atomic rename);
  reload   `postfix reload`;
  flush    `postqueue -f`: mail held for a service no longer held (a resumed IP) goes out.
A failure before the swap leaves the running configuration untouched (the new directory is
removed); a failed reload puts the previous files and link back and reloads them.

RelayAPI owns a section of main.cf and of master.cf between BEGIN/END markers (appended the first
time), and the `relayapi` link with the directory it points to; nothing else is edited.
"""

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from relays.postfix import files
from relays.postfix.render import render

BEGIN = "# BEGIN RelayAPI (manage.py render_postfix --apply): do not edit; render again.\n"
END = "# END RelayAPI\n"
LINK, GENERATIONS = "relayapi", "relayapi.d"
TIMEOUT = 60


_FAILURE = re.compile(r": (fatal|panic|error): ")


class StepFailed(Exception):
    def __init__(self, step, reason):
        super().__init__(f"{step} failed: {reason}")
        self.step, self.reason = step, reason


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


def apply(postfix, log=print):
    """Render, then install into `postfix` step by step; StepFailed names the failing step."""
    config = Path(postfix.config_dir)
    live = config / LINK
    rendering = render(str(live))
    digest = hashlib.sha256(
        (rendering.main_cf + rendering.master_cf).encode()
        + b"".join(
            name.encode() + content for name, (content, _) in sorted(rendering.files.items())
        )
    ).hexdigest()[:16]
    generations = config / GENERATIONS
    generations.mkdir(mode=0o755, exist_ok=True)
    stage = generations / f"{digest}.new"
    shutil.rmtree(stage, ignore_errors=True)
    try:
        _write_and_check(postfix, rendering, stage, live, log)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    target, previous = generations / digest, _current(live)
    if target.name != previous:
        shutil.rmtree(target, ignore_errors=True)
        stage.rename(target)
    else:  # nothing changed since the live generation: it stays, the check copy goes
        shutil.rmtree(stage)
    _swap_and_reload(postfix, rendering, target, log)
    _prune(generations, keep={target.name, previous})
    return rendering


def _write_and_check(postfix, rendering, stage, live, log):
    try:
        files.write(rendering, stage)
    except OSError as error:
        raise StepFailed("write", str(error)) from None
    log(f"write: {len(rendering.files)} tables in {stage}")
    for name in rendering.maps:
        postfix.run("postmap", "postmap", "-c", postfix.config_dir, f"hash:{stage / name}")
    log(f"postmap: {len(rendering.maps)} tables")
    scratch = stage / "check"
    scratch.mkdir()
    main, master = _configuration(postfix, rendering, str(live), str(stage))
    (scratch / "main.cf").write_text(main)
    (scratch / "master.cf").write_text(master)
    _settled(scratch / "main.cf", scratch / "master.cf")
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
    temporary = path.with_name(path.name + ".relayapi-new")
    temporary.write_text(content)
    shutil.copymode(path, temporary)
    _settled(temporary)
    os.replace(temporary, path)


def _link(live, target):
    temporary = live.with_name(live.name + ".relayapi-new")
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(target)
    os.replace(temporary, live)


def _swap_and_reload(postfix, rendering, target, log):
    config = Path(postfix.config_dir)
    live = config / LINK
    old_main, old_master = (config / "main.cf").read_text(), (config / "master.cf").read_text()
    old_target = os.readlink(live) if live.is_symlink() else None
    main, master = _configuration(postfix, rendering, str(live), str(live))
    try:
        _link(live, f"{GENERATIONS}/{target.name}")
        _replace(config / "master.cf", master)
        _replace(config / "main.cf", main)
    except OSError as error:
        _restore(config, old_main, old_master, old_target)
        raise StepFailed("swap", f"{error}; the previous configuration was put back") from None
    log(f"swap: {live} -> {target}")
    try:
        postfix.run("reload", "postfix", "-c", config, "reload")
    except StepFailed as failed:
        _restore(config, old_main, old_master, old_target)
        with contextlib.suppress(StepFailed):
            postfix.run("reload", "postfix", "-c", config, "reload")
        raise StepFailed(
            "reload", f"{failed.reason}; the previous configuration was put back and reloaded"
        ) from None
    log("reload: Postfix reloaded")
    postfix.run("flush", "postqueue", "-c", config, "-f")
    log("flush: the queue flushed (held mail of services no longer held goes out)")


def _restore(config, old_main, old_master, old_target):
    _replace(config / "main.cf", old_main)
    _replace(config / "master.cf", old_master)
    live = config / LINK
    if old_target is None:
        live.unlink(missing_ok=True)
    else:
        _link(live, old_target)


def _prune(generations, keep):
    """Old generations go; the live one and the previous one stay (for a quick look back)."""
    for directory in generations.iterdir():
        if directory.name not in keep:
            shutil.rmtree(directory, ignore_errors=True)
