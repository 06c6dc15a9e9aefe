"""Brute-force protection: refused logins are counted, and too many of them lock the door.

All three doors (GreenArrow HTTP Basic, Mail Manager SigV4, the admin login form) share one
count. Failures are counted per client address, per (username, address) pair and per username,
over a sliding window (RELAYAPI_LOGIN_FAILURE_WINDOW_SECONDS):

- a pair with RELAYAPI_LOGIN_FAILURE_LIMIT failures in the window is locked: that name may not be
  tried from that address, so guessing one account's password is slowed to the limit per window;
- an address with RELAYAPI_LOGIN_FAILURE_ADDRESS_LIMIT failures, whatever the names, is locked
  for every name, which stops trying one password against many accounts;
- a username with RELAYAPI_LOGIN_FAILURE_ACCOUNT_LIMIT failures, whatever the addresses, may
  not have its password checked afresh anywhere (`account_retry_after`): guessing from many
  addresses is slowed to that limit per window in all.

The first two are keyed by the address, so an attacker elsewhere cannot lock a user out with
them. The third can be reached from anywhere, which is why only the password doors ask it: a
client whose password this process has verified before (the GreenArrow success cache) needs no
fresh check and keeps working, and an admin already logged in keeps their session. Mail
Manager keys are not guessable (a 40-character random secret), so that door does not ask it,
and nobody can lock a key out by knowing its id.

An IPv6 client is counted by its /64: one subscriber usually has a whole /64 to pick addresses
from. A lock ends when enough of its failures have left the window; attempts refused by a lock
are not counted, so it ends even while an attacker keeps knocking. Callers ask before checking
any password or signature, so a locked door costs one or two small indexed queries, never a
password hash. Successful logins are not recorded.
"""

import hashlib
import hmac
import ipaddress
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


def counted_address(address):
    """The address failures are counted under: an IPv4 address itself, an IPv6 address's /64
    network (as its first address, `2001:db8:1:2::`), the unspecified address for none."""
    if not address:
        return UNKNOWN_ADDRESS
    parsed = ipaddress.ip_address(address)
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False).network_address)
    return str(parsed)


def _lock_ends(newest_first, limit):
    """When a lock over these failure times ends (the limit-th newest leaves the window), or
    None when fewer than the limit are in it."""
    if len(newest_first) < limit:
        return None
    return newest_first[limit - 1] + _window()


def _seconds_until(ends, now):
    ends = [end for end in ends if end is not None]
    if not ends:
        return 0
    return max(1, math.ceil((max(ends) - now).total_seconds()))


def retry_after(username, address):
    """Seconds until `username` may be tried again from `address` (0: now), by the pair and
    address limits. One query."""
    address = counted_address(address)
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
    digest = _digest(username)
    pair = [at for at, tried in recent if tried == digest]
    return _seconds_until(
        [_lock_ends([at for at, _ in recent], address_limit), _lock_ends(pair, pair_limit)], now
    )


def account_retry_after(username):
    """Seconds until the password of `username` may be checked afresh from anywhere (0: now), by
    the account limit. One query (the relays_loginfail_name_at index)."""
    now = timezone.now()
    limit = settings.RELAYAPI_LOGIN_FAILURE_ACCOUNT_LIMIT
    recent = list(
        LoginFailure.objects.filter(username_digest=_digest(username), at__gt=now - _window())
        .order_by("-at")
        .values_list("at", flat=True)[:limit]
    )
    return _seconds_until([_lock_ends(recent, limit)], now)


def record_failure(username, address, door):
    """Count one refused login, and delete a bounded batch of failures that no longer count."""
    now = timezone.now()
    with transaction.atomic():
        LoginFailure.objects.create(
            at=now,
            address=counted_address(address),
            username_digest=_digest(username),
            door=door,
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
