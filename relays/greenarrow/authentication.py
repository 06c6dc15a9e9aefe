"""Who may call the GreenArrow API: active staff users, by HTTP Basic authentication.

GreenArrow accepts the credentials of any account that may log in to its web interface; the
equivalent here is a Django user who may log in to the admin (active and staff).

Scripts send their password with every request, and checking it (PBKDF2, by design ~0.3 s of
CPU) would cap the API at a few requests per second per core. So a successful check is
remembered for a short time, in this process only, under a keyed hash of the credentials: the
password itself is never kept, and the key is random per process, so the cache is worthless
outside it. An entry is bound to the user's current password hash, username and active/staff
state, which are read from the database on every request (the query that loads the user anyway):
a password change, a rename, deactivation or loss of staff takes effect on the very next
request. Failures are never remembered, so a wrong password always costs the full check.

Refused logins are counted (relays.lockout) before that check: past a limit, the pair, the
address or the account gets 429 without any password being hashed. A remembered success skips
the count: only the right password finds an entry, so an attacker gains nothing by it, while a
script that is already logged in keeps working from an address an attacker shares, and even
while attackers elsewhere have locked its account. A fresh check also needs one of the machine's
few hashing slots (relays.password_slots): when all are taken it is 429 too, and the other cores
stay free for the requests that need no hash. Every refusal of a password that was checked says
the same thing, whether the password was wrong or the account may not use the API, so the answer
never confirms a password.
"""

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict

from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework import exceptions
from rest_framework.authentication import BasicAuthentication

from relayapi.clients import client_address
from relays import lockout, password_slots
from relays import validators as v
from relays.models import LoginFailure

# The one answer to every refused login (DRF's own wording for a wrong password).
LOGIN_FAILED = "Invalid username/password."


class VerifiedCredentials:
    """A bounded, expiring map from a keyed hash of (username, password) to the verified user
    id and the password hash it was verified against. Thread-safe (gunicorn threads)."""

    def __init__(self, max_entries=10_000):
        self._key = secrets.token_bytes(32)
        self._entries = OrderedDict()
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def _digest(self, username, password):
        message = f"{len(username)}:{username}:{password}".encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def get(self, username, password):
        """(user id, password hash) remembered for these credentials, or None."""
        digest = self._digest(username, password)
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            user_id, password_hash, expires = entry
            if time.monotonic() >= expires:
                del self._entries[digest]
                return None
            self._entries.move_to_end(digest)
            return user_id, password_hash

    def remember(self, username, password, user):
        ttl = settings.RELAYAPI_AUTH_CACHE_SECONDS
        if ttl <= 0:
            return
        digest = self._digest(username, password)
        with self._lock:
            self._entries[digest] = (user.pk, user.password, time.monotonic() + ttl)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def forget(self, username, password):
        with self._lock:
            self._entries.pop(self._digest(username, password), None)

    def clear(self):
        with self._lock:
            self._entries.clear()


verified = VerifiedCredentials()


def _may_log_in(user):
    return user.is_active and user.is_staff


def _load_user(user_id):
    """The user row as it is now. A plain SQL statement: this runs on every authenticated
    request, and Django's query compiler costs more than the query itself."""
    model = get_user_model()
    meta = model._meta
    # Table and column names come from the model, never from the request.
    sql = f"SELECT * FROM {meta.db_table} WHERE {meta.pk.column} = %s"
    return next(iter(model._default_manager.raw(sql, [user_id])), None)


class LockedOut(exceptions.Throttled):
    """Too many refused logins from this address: 429 with Retry-After, whatever the password."""

    default_detail = "Too many failed logins from this address."
    extra_detail_singular = "Try again in {wait} second."
    extra_detail_plural = "Try again in {wait} seconds."


class AccountLockedOut(LockedOut):
    """Too many refused logins for this username, from anywhere: 429 for a fresh check."""

    default_detail = "Too many failed logins for this account."


class HashingBusy(LockedOut):
    """Every hashing slot is taken: 429 with Retry-After, nothing hashed, nothing counted."""

    default_detail = "Too many logins are being checked at once."


class StaffBasicAuthentication(BasicAuthentication):
    www_authenticate_realm = "RelayAPI"

    def authenticate_credentials(self, userid, password, request=None):
        remembered = verified.get(userid, password)
        if remembered is not None:
            user_id, password_hash = remembered
            user = _load_user(user_id)
            if (
                user is not None
                and user.get_username() == userid
                and hmac.compare_digest(user.password, password_hash)
                and _may_log_in(user)
            ):
                return user, None
            verified.forget(userid, password)
        address = client_address(request)
        try:
            # The slot first: a refusal for want of one then costs no query either, which keeps
            # a flood of wrong passwords about as cheap to answer as any other flood.
            with password_slots.slot():
                user, auth = self._check_afresh(userid, password, address, request)
        except password_slots.Busy as busy:
            raise HashingBusy(busy.retry_after) from None
        if user is None or not _may_log_in(user):
            lockout.record_failure(userid, address, LoginFailure.Door.GREENARROW)
            raise exceptions.AuthenticationFailed(LOGIN_FAILED)
        verified.remember(userid, password, user)
        return user, auth

    def _check_afresh(self, userid, password, address, request):
        """(user or None, auth) by Django's password check, unless a lock refuses it first."""
        wait = lockout.retry_after(userid, address)
        if wait:
            raise LockedOut(wait)
        wait = lockout.account_retry_after(userid)
        if wait:
            raise AccountLockedOut(wait)
        # No account has a name or password with NUL in it (PostgreSQL cannot even look one up).
        if not (v.is_storable(userid) and v.is_storable(password)):
            return None, None
        try:
            # Django hashes even for an unknown name, so that timing tells nothing.
            return super().authenticate_credentials(userid, password, request)
        except exceptions.AuthenticationFailed:
            return None, None
