"""`render_postfix --apply` is one at a time and leaves a trace: it holds a lock on the Postfix
configuration directory for its whole run (a second apply waits a bounded time, then refuses and
says whose apply is running), stages in a directory of its own (a random name, private, nothing
followed), leaves no new generation behind when it fails, says exactly what it did and did not do,
and every apply, failed or not, is in the audit log."""

import io
import os
import stat
import threading

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from relays.models import AuditEntry, DefaultVirtualMta
from relays.postfix import install
from relays.postfix.render import render
from tests.factories import RelayServerFactory


def apply(config_dir, *options):
    out = io.StringIO()
    call_command(
        "render_postfix", "--apply", "--postfix-config", str(config_dir), *options, stdout=out
    )
    return out.getvalue()


def applies():
    """The audit log's apply entries, oldest first, as (record_name, after)."""
    entries = AuditEntry.objects.filter(action=AuditEntry.Action.APPLY).order_by("id")
    return [(e.record_type, e.record_name, e.facade, e.after) for e in entries]


def generation(config_dir):
    return install.digest(render(str(config_dir / install.LINK)))


def generations(config_dir):
    return sorted(p.name for p in (config_dir / install.GENERATIONS).iterdir())


@pytest.fixture
def relay(db):
    relay = RelayServerFactory(with_auth=True)
    DefaultVirtualMta.objects.update_or_create(id=1, defaults={"virtual_mta": relay})
    return relay


@pytest.fixture
def held():
    """held(config_dir, seconds) -> the apply lock of config_dir taken by another thread for
    `seconds` (as another apply would hold it); released when the test ends at the latest."""
    release, threads = threading.Event(), []

    def hold(config_dir, seconds):
        taken = threading.Event()

        def run():
            with install.locked(config_dir, wait=0):
                taken.set()
                release.wait(seconds)

        threads.append(threading.Thread(target=run))
        threads[-1].start()
        assert taken.wait(5)

    yield hold
    release.set()
    for thread in threads:
        thread.join()


# --- the lock (no Postfix needed: it is taken before anything else) --------------------------


def test_an_apply_while_another_holds_the_lock_refuses_after_waiting_and_says_whose(
    tmp_path, held, relay
):
    held(tmp_path, 30)

    with pytest.raises(CommandError) as refused:
        apply(tmp_path, "--wait", "0.2")

    assert str(refused.value) == (
        f"nothing changed: another apply is running (pid {os.getpid()}); "
        f"gave up after waiting 0.2 s for {tmp_path / install.LOCK}"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [install.LOCK]  # nothing staged
    assert applies() == [
        (
            "postfix",
            str(tmp_path),
            "command",
            {
                "outcome": "failed",
                "step": "lock",
                "generation": None,
                "changed": False,
                "message": str(refused.value),
            },
        )
    ]


def test_the_lock_file_is_never_followed_through_a_symlink(tmp_path, relay):
    victim = tmp_path / "victim"
    victim.write_text("not a lock\n")
    config = tmp_path / "etc"
    config.mkdir()
    (config / install.LOCK).symlink_to(victim)

    with pytest.raises(CommandError, match=r"^nothing changed: lock failed: .*Too many levels"):
        apply(config, "--wait", "0")

    assert victim.read_text() == "not a lock\n"


# --- with a real Postfix -----------------------------------------------------------------------


def test_a_successful_apply_is_audited_with_its_generation_and_is_private(postfix, relay):
    config = postfix.config_dir
    expected = generation(config)

    log = apply(config)

    assert "reload: Postfix reloaded\n" in log
    assert os.readlink(config / install.LINK) == f"{install.GENERATIONS}/{expected}"
    live = config / install.GENERATIONS / expected
    assert stat.S_IMODE(live.stat().st_mode) == 0o700
    sasl = live / "sasl" / f"relayapi_r{relay.pk}"
    assert stat.S_IMODE(sasl.stat().st_mode) == 0o600
    assert applies() == [
        (
            "postfix",
            str(config),
            "command",
            {
                "outcome": "applied",
                "step": "flush",
                "generation": expected,
                "previous": None,
                "changed": True,
            },
        )
    ]


def test_a_second_apply_during_one_is_refused_and_the_first_completes(postfix, relay, monkeypatch):
    """Before the lock both used one staging name: the second removed the first's tables
    mid-check, installed its own, and the first then failed saying nothing had changed."""
    config, second = postfix.config_dir, []
    real_run = install.Postfix.run

    def run(self, step, *args, **options):
        if step == "check" and not second:  # the first apply is between postmap and swap
            second.append("started")
            with pytest.raises(CommandError) as refused:
                apply(config, "--wait", "0.2")
            second.append(str(refused.value))
        return real_run(self, step, *args, **options)

    monkeypatch.setattr(install.Postfix, "run", run)

    apply(config)

    assert second == [
        "started",
        f"nothing changed: another apply is running (pid {os.getpid()}); "
        f"gave up after waiting 0.2 s for {config / install.LOCK}",
    ]
    assert generations(config) == [generation(config)]
    assert [(after["outcome"], after["step"]) for *_, after in applies()] == [
        ("failed", "lock"),
        ("applied", "flush"),
    ]


def test_an_apply_waits_for_the_running_one_then_installs(postfix, relay, held):
    config = postfix.config_dir
    held(config, 0.5)

    log = apply(config, "--wait", "10")

    assert log.startswith(f"lock: waited for another apply (pid {os.getpid()})")
    assert "reload: Postfix reloaded\n" in log
    assert os.readlink(config / install.LINK) == f"{install.GENERATIONS}/{generation(config)}"


def test_a_failed_check_leaves_no_staged_directory(postfix, relay, monkeypatch):
    config = postfix.config_dir
    apply(config)
    live = generations(config)
    real = install.render

    def broken(base):
        rendering = real(base)
        rendering.main_cf += "transport_maps = hash:/nonexistent/relayapi-table\n"
        return rendering

    monkeypatch.setattr(install, "render", broken)

    with pytest.raises(CommandError, match=r"^nothing changed: check failed: "):
        apply(config)

    assert generations(config) == live
    assert applies()[-1][3]["step"] == "check"
    assert applies()[-1][3]["changed"] is False


def test_a_failed_reload_leaves_no_new_generation_and_says_what_was_put_back(
    postfix, relay, monkeypatch
):
    config = postfix.config_dir
    apply(config)
    before = {name: (config / name).read_text() for name in ("main.cf", "master.cf")}
    live, link = generations(config), os.readlink(config / install.LINK)
    relay.destination_port = 2526
    relay.save()
    real_run, failed = install.Postfix.run, []

    def run(self, step, *args, **options):
        if step == "reload" and not failed:
            failed.append(step)
            raise install.StepFailed("reload", "postfix reload: simulated")
        return real_run(self, step, *args, **options)

    monkeypatch.setattr(install.Postfix, "run", run)

    with pytest.raises(CommandError) as error:
        apply(config)

    assert str(error.value) == (
        "nothing changed: reload failed: postfix reload: simulated; "
        "the previous configuration was put back and reloaded"
    )
    assert generations(config) == live
    assert os.readlink(config / install.LINK) == link
    assert {name: (config / name).read_text() for name in before} == before
    *_, after = applies()[-1]
    assert after == {
        "outcome": "failed",
        "step": "reload",
        "generation": generation(config),
        "changed": False,
        "message": str(error.value),
    }


def test_a_failed_flush_says_the_configuration_was_installed(postfix, relay, monkeypatch):
    config = postfix.config_dir
    real_run = install.Postfix.run

    def run(self, step, *args, **options):
        if step == "flush":
            raise install.StepFailed("flush", "postqueue -f: simulated")
        return real_run(self, step, *args, **options)

    monkeypatch.setattr(install.Postfix, "run", run)
    expected = generation(config)

    with pytest.raises(CommandError) as error:
        apply(config)

    assert str(error.value) == (
        f"installed generation {expected} and reloaded Postfix: flush failed: "
        "postqueue -f: simulated; run `postqueue -f` to send mail held for a resumed service"
    )
    assert os.readlink(config / install.LINK) == f"{install.GENERATIONS}/{expected}"
    assert applies()[-1][3]["changed"] is True


def test_leftovers_of_a_crashed_apply_are_never_written_through_and_are_pruned(
    postfix, relay, tmp_path
):
    """A stage named after the digest (what a crashed apply left, or anyone who could write in
    relayapi.d planted) is not reused: a symlink there is not followed."""
    config = postfix.config_dir
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (config / install.GENERATIONS).mkdir()
    stale = config / install.GENERATIONS / f"{generation(config)}.new"
    stale.symlink_to(elsewhere)

    apply(config)

    assert list(elsewhere.iterdir()) == []
    assert generations(config) == [generation(config)]
    assert not (config / install.GENERATIONS / generation(config)).is_symlink()
