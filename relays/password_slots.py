"""How many passwords may be hashed at once: a few slots shared by every worker on the machine.

A password check costs a PBKDF2 hash, by design about half a second of one core. Wrong passwords
are never remembered, so a handful of clients sending them, each well under the lockout limits,
kept every core hashing and made the whole API slow (/healthz from 3 ms to 0.7 s with four
of them, RELIABILITY.md). So a fresh check must first take one of RELAYAPI_PASSWORD_HASH_SLOTS
slots (default: half the cores, at least one); the other cores stay free for everything else.
A slot is an exclusive flock(2) on one of the files `slot-0` ... in
RELAYAPI_PASSWORD_HASH_SLOT_DIR: the kernel shares the count between every process that opens
the same directory, and releases a slot when its holder closes the file or dies (a SIGKILLed
worker leaves nothing behind).

A check that finds every slot taken may wait for one, but only in a short line: as many places
(`line-0` ...) as there are slots, and at most RELAYAPI_PASSWORD_HASH_WAIT_SECONDS (2) in it. So
two logins that arrive together (two scripts after a restart) both get in, while a flood of
wrong passwords ties up at most twice the slots' number of workers, hashing or waiting, and the
rest of its attempts are answered 429 with Retry-After at once: no hash, and (the doors take the
slot before the lockout queries) no query. A waiting request holds its worker (gunicorn's sync
workers serve one request each), hence the short line. Credentials the process verified before
(the GreenArrow success cache) and admin sessions need no slot.

Without a directory there is no bound (the test suite, `manage.py runserver`);
deploy/gunicorn.conf.py gives every gunicorn one.
"""

import contextlib
import fcntl
import os
import random
import time
from pathlib import Path

from django.conf import settings

# How often a request in line looks for a free slot: a small fraction of a hash.
POLL_SECONDS = 0.01


class Busy(Exception):
    """Every slot and every place in line is taken, or the wait ran out: the request should be
    answered 429, retried after `retry_after`."""

    retry_after = 1


def _take(directory, kind, count):
    """An open descriptor of one of the files `kind-0` ... `kind-{count - 1}` that this process
    now holds exclusively, or None when every one is held."""
    # From a random first file: concurrent requests do not all fight over the first.
    first = random.randrange(count)
    for n in range(count):
        path = directory / f"{kind}-{(first + n) % count}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return fd
    return None


def _wait_in_line(directory, slots):
    """A slot's descriptor after waiting for it in one of the places in line, or None when the
    line is full or the wait runs out. The place is given up as soon as the slot is taken."""
    place = _take(directory, "line", slots)
    if place is None:
        return None
    try:
        deadline = time.monotonic() + settings.RELAYAPI_PASSWORD_HASH_WAIT_SECONDS
        while time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            fd = _take(directory, "slot", slots)
            if fd is not None:
                return fd
        return None
    finally:
        os.close(place)


@contextlib.contextmanager
def slot():
    """Hold one hashing slot for the duration of the block; raise Busy if none can be had.

    Each call opens its own descriptors: flock belongs to the open file, so two threads of one
    worker never share a slot by accident."""
    configured = settings.RELAYAPI_PASSWORD_HASH_SLOT_DIR
    if not configured:
        yield
        return
    directory = Path(configured)
    # Private: another user who could open a slot file could hold it and stop every login.
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    slots = max(1, settings.RELAYAPI_PASSWORD_HASH_SLOTS)
    fd = _take(directory, "slot", slots)
    if fd is None:
        fd = _wait_in_line(directory, slots)
    if fd is None:
        raise Busy
    try:
        yield
    finally:
        os.close(fd)  # releases the lock
