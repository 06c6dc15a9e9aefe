"""Brute-force protection: refused logins are counted, and too many of them lock the door.

All three doors (GreenArrow HTTP Basic, Mail Manager SigV4, the admin login form) share one
count. Failures are counted per client address and per (username, address) pair, over a sliding
window (RELAYAPI_LOGIN_FAILURE_WINDOW_SECONDS):

- a pair with RELAYAPI_LOGIN_FAILURE_LIMIT failures in the window is locked: that name may not be
  tried from that address, so guessing one account's password is slowed to the limit per window;
- an address with RELAYAPI_LOGIN_FAILURE_ADDRESS_LIMIT failures, whatever the names, is locked
  for every name, which stops trying one password against many accounts.

Both are keyed by the address, so an attacker elsewhere cannot lock a user out: the same user
from another address still logs in. A lock ends when enough of its failures have left the
window; attempts refused by a lock are not counted, so it ends even while an attacker keeps
knocking. Callers ask `retry_after` before checking any password or signature, so a locked
door costs one small indexed query, never a password hash. Successful logins are not recorded.
"""

import hashlib
import hmac
import math
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from relays.models import LoginFailure

# The unspecified address stands for "no address known" (a Unix socket with no proxy in front):
# such clients share one count.
UNKNOWN_ADDRESS = "0.0.0.0"
# Each recorded failure deletes at most this many expired rows, so the table stays as small as
# the failures inside one window and no request pays for a large backlog at once.
PRUNE_BATCH = 100


def _digest(username):
    """A keyed hash of the name tried: equal names count together, and the table never holds a
    name (or the password someone typed into the name field) in clear."""
    key = hashlib.sha256(b"relays.lockout:" + settings.SECRET_KEY.encode()).digest()
    return hmac.new(key, username.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def _window():
    return timedelta(seconds=settings.RELAYAPI_LOGIN_FAILURE_WINDOW_SECONDS)


def retry_after(username, address):
    """Seconds until `username` may be tried again from `address` (0: now). One query."""
    address = address or UNKNOWN_ADDRESS
    now = timezone.now()
    window = _window()
    pair_limit = settings.RELAYAPI_LOGIN_FAILURE_LIMIT
    address_limit = settings.RELAYAPI_LOGIN_FAILURE_ADDRESS_LIMIT
    # The address's newest failures, as many as its limit: enough to decide both locks. A pair's
    # failures are among them, and a pair failure older than the address limit's oldest leaves
    # the window before the address lock ends anyway.
    recent = list(
        LoginFailure.objects.filter(address=address, at__gt=now - window)
        .order_by("-at")
        .values_list("at", "username_digest")[:address_limit]
    )
    # A lock ends when the limit-th newest failure leaves the window: then fewer than the limit
    # remain in it.
    ends = []
    if len(recent) >= address_limit:
        ends.append(recent[address_limit - 1][0] + window)
    digest = _digest(username)
    pair = [at for at, tried in recent if tried == digest]
    if len(pair) >= pair_limit:
        ends.append(pair[pair_limit - 1] + window)
    if not ends:
        return 0
    return max(1, math.ceil((max(ends) - now).total_seconds()))


def record_failure(username, address, door):
    """Count one refused login, and delete a bounded batch of failures that no longer count."""
    now = timezone.now()
    with transaction.atomic():
        LoginFailure.objects.create(
            at=now, address=address or UNKNOWN_ADDRESS, username_digest=_digest(username), door=door
        )
        # SKIP LOCKED (PostgreSQL): two app servers pruning at once take different rows instead
        # of waiting for, or deadlocking on, each other's. SQLite serialises writes anyway.
        expired = (
            LoginFailure.objects.filter(at__lt=now - _window())
            .order_by("at")
            .select_for_update(skip_locked=True)
            .values("pk")[:PRUNE_BATCH]
        )
        LoginFailure.objects.filter(pk__in=expired).delete()
