"""At most RELAYAPI_PASSWORD_HASH_SLOTS password hashes run at once on the machine, and as many
more checks may wait a little for one: a fresh check that finds every slot and every place in
line taken (by any process) is answered 429 at once, hashing nothing and counting nothing, while
credentials verified before need no slot."""

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from django.test import Client

from relays import password_slots
from relays.models import LoginFailure
from tests.conftest import GA, GreenArrowClient, error
from tests.factories import UserFactory

BUSY = "Too many logins are being checked at once. Try again in 1 second."


@pytest.fixture
def slots(settings, tmp_path):
    """One slot and one place in line, in a directory of the test's own."""
    settings.RELAYAPI_PASSWORD_HASH_SLOT_DIR = str(tmp_path / "slots")
    settings.RELAYAPI_PASSWORD_HASH_SLOTS = 1
    settings.RELAYAPI_PASSWORD_HASH_WAIT_SECONDS = 2
    (tmp_path / "slots").mkdir()
    return tmp_path / "slots"


@contextlib.contextmanager
def held(directory, *names):
    """Slot or line files held as another worker would hold them (a descriptor of its own)."""
    fds = [os.open(directory / name, os.O_RDWR | os.O_CREAT, 0o600) for name in names]
    try:
        for fd in fds:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
    finally:
        for fd in fds:
            os.close(fd)


@pytest.fixture
def sam(db):
    return UserFactory(username="sam", perms=["view_relayserver"])


def relays(password="pw"):
    return GreenArrowClient("sam", password).client.get(f"{GA}/relay_servers")


def test_a_check_that_finds_the_slot_and_the_line_taken_is_429_at_once(sam, slots, hashes):
    started = time.monotonic()
    with held(slots, "slot-0", "line-0"):  # one request hashing, another waiting for it
        wrong, right = relays("wrong"), relays()

    assert time.monotonic() - started < 1  # no wait
    for response in (wrong, right):
        assert response.status_code == 429
        assert response.json() == error("invalid_request", BUSY)
        assert response["Retry-After"] == "1"
    assert hashes() == 0
    assert not LoginFailure.objects.exists()  # nothing was tried
    assert relays().status_code == 200  # free again


def test_a_check_that_finds_the_slot_taken_waits_in_line_for_it(sam, slots):
    """Two logins at the same moment (two scripts after a restart) both get in."""
    other_worker = os.open(slots / "slot-0", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(other_worker, fcntl.LOCK_EX)
    done_hashing = threading.Timer(0.3, os.close, [other_worker])
    done_hashing.start()

    started = time.monotonic()
    response = relays()
    waited = time.monotonic() - started
    done_hashing.join()

    assert response.status_code == 200
    assert waited >= 0.25


def test_the_wait_in_line_is_bounded(sam, slots, settings):
    settings.RELAYAPI_PASSWORD_HASH_WAIT_SECONDS = 0.3

    with held(slots, "slot-0"):
        started = time.monotonic()
        response = relays()
        waited = time.monotonic() - started
        with held(slots, "line-0"):  # the place in line was given up
            pass

    assert response.status_code == 429
    assert 0.25 <= waited < 2


def test_a_remembered_password_needs_no_slot(sam, slots, hashes):
    assert relays().status_code == 200

    with held(slots, "slot-0", "line-0"):
        assert relays().status_code == 200

    assert hashes() == 1


def test_the_admin_login_form_needs_a_slot_too(sam, slots):
    sam.is_superuser = True
    sam.save()

    with held(slots, "slot-0", "line-0"):
        page = Client().post("/admin/login/", {"username": "sam", "password": "pw"})

    assert page.status_code == 429
    assert page["Retry-After"] == "1"
    assert "Too many logins are being checked at once. Try again in a moment." in (
        page.content.decode()
    )
    assert "_auth_user_id" not in page.client.session


def test_as_many_holders_as_slots(slots, settings):
    settings.RELAYAPI_PASSWORD_HASH_SLOTS = 2
    settings.RELAYAPI_PASSWORD_HASH_WAIT_SECONDS = 0

    with contextlib.ExitStack() as held:
        held.enter_context(password_slots.slot())
        held.enter_context(password_slots.slot())
        with pytest.raises(password_slots.Busy):
            held.enter_context(password_slots.slot())
    with password_slots.slot(), password_slots.slot():  # both free again
        pass


def test_the_slots_are_shared_by_processes_and_freed_when_the_holder_dies(slots, settings):
    """What gunicorn's workers see of each other: a slot held by another process is taken, and
    a worker that is SIGKILLed mid-hash leaves nothing locked."""
    settings.RELAYAPI_PASSWORD_HASH_WAIT_SECONDS = 0
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import fcntl, os, sys, time
                os.makedirs({str(slots)!r}, exist_ok=True)
                fd = os.open({str(slots / "slot-0")!r}, os.O_RDWR | os.O_CREAT, 0o600)
                fcntl.flock(fd, fcntl.LOCK_EX)
                print("held", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(password_slots.Busy), password_slots.slot():
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)

    with password_slots.slot():
        pass


def test_the_slot_files_are_private(settings, tmp_path):
    settings.RELAYAPI_PASSWORD_HASH_SLOT_DIR = str(tmp_path / "made-here")

    with password_slots.slot():
        pass

    assert oct((tmp_path / "made-here").stat().st_mode & 0o777) == "0o700"
    assert oct(os.stat(tmp_path / "made-here" / "slot-0").st_mode & 0o777) == "0o600"


def test_without_a_directory_there_is_no_bound(settings):
    settings.RELAYAPI_PASSWORD_HASH_SLOT_DIR = ""
    settings.RELAYAPI_PASSWORD_HASH_SLOTS = 1

    with password_slots.slot(), password_slots.slot():
        pass
