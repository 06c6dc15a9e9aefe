"""`render_postfix --out DIR` is run as root into places other users can reach (`/tmp`): it never
follows a symlink, never writes into a directory someone else owns or can write to, and never
opens a file already there. The render goes into a fresh private directory beside DIR, renamed
into place whole; a previous render of ours in DIR is replaced, anything else is refused."""

import io
import os
import re
import stat
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from relays.postfix import files
from relays.postfix import render as render_module
from tests.factories import RelayServerFactory

MAIN, NOBODY = "main.cf.relayapi", 65534
as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="handing a directory to another user (chown) needs root"
)


def render_to(out):
    stdout = io.StringIO()
    call_command("render_postfix", "--out", str(out), stdout=stdout)
    return stdout.getvalue()


def tree(directory):
    """{relative path: (bytes or "dir" or "-> link target", mode)} of everything under it."""
    found = {}
    for root, dirs, names in os.walk(directory):
        for name in dirs + names:
            path = os.path.join(root, name)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                content = f"-> {os.readlink(path)}"
            elif stat.S_ISDIR(info.st_mode):
                content = "dir"
            else:
                content = Path(path).read_bytes()
            found[os.path.relpath(path, directory)] = (content, stat.S_IMODE(info.st_mode))
    return found


@pytest.fixture
def victim(tmp_path):
    """A file elsewhere that a planted symlink points at."""
    victim = tmp_path / "elsewhere" / "precious"
    victim.parent.mkdir()
    victim.write_text("not yours\n")
    return victim


def test_a_fresh_directory_is_private_with_the_secrets_0600(tmp_path, db):
    relay = RelayServerFactory(destination_username="user-a", destination_password="pw")

    assert render_to(tmp_path / "out") == f"3 files written to {tmp_path / 'out'}\n"

    out = tmp_path / "out"
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert out.stat().st_uid == os.geteuid()
    assert stat.S_IMODE((out / "sasl" / f"relayapi_r{relay.pk}").stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no staging left beside it


def test_dir_being_a_symlink_is_refused_and_nothing_is_written_through_it(tmp_path, victim, db):
    RelayServerFactory(with_auth=True)
    (tmp_path / "out").symlink_to(victim.parent)
    before = tree(tmp_path)

    with pytest.raises(
        CommandError,
        match=rf"^nothing written: --out {tmp_path / 'out'} is a symbolic link \(never followed\)$",
    ):
        render_to(tmp_path / "out")

    assert tree(tmp_path) == before


def test_a_symlink_planted_in_our_previous_render_is_replaced_not_followed(tmp_path, victim, db):
    relay = RelayServerFactory(with_auth=True)
    render_to(tmp_path / "out")
    sasl = tmp_path / "out" / "sasl" / f"relayapi_r{relay.pk}"
    sasl.unlink()
    sasl.symlink_to(victim)
    (tmp_path / "out" / MAIN).unlink()
    (tmp_path / "out" / MAIN).symlink_to(victim)

    render_to(tmp_path / "out")

    assert victim.read_text() == "not yours\n"
    assert not sasl.is_symlink() and stat.S_IMODE(sasl.stat().st_mode) == 0o600
    assert not (tmp_path / "out" / MAIN).is_symlink()


@pytest.mark.parametrize("swap", ["renameat2", "two renames"])
def test_our_previous_render_is_replaced_as_a_whole(tmp_path, db, monkeypatch, swap):
    if swap == "two renames":  # a kernel or file system that cannot exchange two names
        monkeypatch.setattr(files, "_renameat2", None)
    RelayServerFactory(with_auth=True)
    render_to(tmp_path / "out")
    (tmp_path / "out" / "sasl" / "relayapi_r999").write_text("stale\n")
    (tmp_path / "out").chmod(0o755)

    render_to(tmp_path / "out")

    assert not (tmp_path / "out" / "sasl" / "relayapi_r999").exists()
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o700
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the old one removed


@as_root
def test_a_directory_another_user_prepared_is_refused_and_left_as_it_was(tmp_path, db):
    relay = RelayServerFactory(with_auth=True)
    out = tmp_path / "out"
    (out / "sasl").mkdir(parents=True)
    (out / "sasl" / f"relayapi_r{relay.pk}").write_text("theirs\n")
    os.chown(out, NOBODY, NOBODY)
    os.chown(out / "sasl", NOBODY, NOBODY)
    os.chown(out / "sasl" / f"relayapi_r{relay.pk}", NOBODY, NOBODY)
    before = tree(tmp_path)

    with pytest.raises(
        CommandError,
        match=rf"^nothing written: --out {out} is owned by uid {NOBODY}, not by uid 0 "
        r"\(the user running this\)$",
    ):
        render_to(out)

    assert tree(tmp_path) == before


@pytest.mark.parametrize(
    ("mode", "who"), [(0o777, "group and others"), (0o757, "others"), (0o770, "group")]
)
def test_a_directory_others_can_write_to_is_refused(tmp_path, db, mode, who):
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(mode)

    with pytest.raises(
        CommandError,
        match=rf"^nothing written: --out {out} is writable by {who} \(mode {mode:04o}\)$",
    ):
        render_to(out)

    assert tree(tmp_path) == {"out": ("dir", mode)}


def test_a_directory_holding_more_than_a_render_is_refused(tmp_path, db):
    """`--out /etc/postfix` must not replace Postfix's own configuration."""
    out = tmp_path / "etc"
    out.mkdir(mode=0o755)
    (out / "main.cf").write_text("myhostname = example\n")

    with pytest.raises(
        CommandError,
        match=rf"^nothing written: --out {out} holds files a render does not write \(main.cf\); "
        r"name a new directory or a previous render's$",
    ):
        render_to(out)

    assert tree(out) == {"main.cf": (b"myhostname = example\n", 0o644)}


def test_a_symlink_planted_at_dir_while_the_render_is_written_is_not_followed(
    tmp_path, victim, db, monkeypatch
):
    RelayServerFactory(with_auth=True)
    out, real = tmp_path / "out", files.write_into

    def then_planted(rendering, directory):
        written = real(rendering, directory)
        out.symlink_to(victim.parent)  # the race: after the check, before the rename
        return written

    monkeypatch.setattr(files, "write_into", then_planted)

    with pytest.raises(CommandError, match=r"^nothing written: \[Errno 20\] Not a directory"):
        render_to(out)

    assert sorted(p.name for p in victim.parent.iterdir()) == ["precious"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "out"]


def test_a_failed_render_leaves_no_staging_directory(tmp_path, db, monkeypatch):
    # A record Postfix cannot take is held, not a failure (relays.holds): a value the
    # compiler's last check refuses stands for what is left that can fail.
    RelayServerFactory(name="odd")
    monkeypatch.setattr(
        "relays.postfix.render._SAFE", {**render_module._SAFE, "nexthop": re.compile("x")}
    )

    with pytest.raises(CommandError, match="nothing written: "):
        render_to(tmp_path / "out")

    assert list(tmp_path.iterdir()) == []
