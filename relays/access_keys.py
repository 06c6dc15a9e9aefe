"""Mail Manager access keys: made, deactivated and deleted here, by every door (the admin, the
`create_access_key` / `revoke_access_key` commands), each change audited in its transaction.

SigV4 needs the secret itself (it is an HMAC key), so it cannot be hashed like a password;
`AccessKey.secret` is encrypted in the database by relays.crypto, under RELAYAPI_ENCRYPTION_KEY.
Only signing reads it: listing, deactivating and deleting keys never decrypt (`without_secret`),
so a key stored under another key can still be revoked.
"""

import secrets
import string
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from relays import audit, crypto
from relays.errors import Forbidden
from relays.models import AccessKey, AuditEntry

_ID_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "/+"


def new_key_pair():
    """(AccessKeyId, SecretAccessKey) in AWS's formats: AKIA + 16, and 40 characters."""
    key_id = "AKIA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    return key_id, secret


def without_secret(keys=None):
    """Access keys loaded without their secret: nothing is decrypted (relays.crypto)."""
    return crypto.without_secrets(AccessKey.objects.all() if keys is None else keys)


def may_sign(user):
    """Whether requests signed with `user`'s keys are accepted: SigV4 verification takes only
    active staff users' keys, as HTTP Basic takes only theirs."""
    return user.is_active and user.is_staff


# "Last used" is kept to this precision: one UPDATE per key per minute, not one per request.
LAST_USED_PRECISION = timedelta(minutes=1)


def mark_used(key):
    """Note that `key` signed an accepted request (not audited: a use, not a change)."""
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_PRECISION:
        AccessKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now


def may_manage_keys_of(user):
    """Whether whoever is acting may make, change or delete `user`'s keys: a key acts as its
    user, so only a superuser (or the operator at a shell) handles anyone else's; everyone else
    only their own."""
    maker = audit.acting_user()
    if maker is None:
        return audit.acting_through() == "command"
    return maker.is_superuser or maker.pk == user.pk


def _assert_may_manage_keys_of(user):
    if not may_manage_keys_of(user):
        maker = audit.acting_user()
        name = maker.get_username() if maker is not None else "this caller"
        raise Forbidden(
            f"{name} may make and change only their own access keys; only a superuser may "
            f"for {user.get_username()}"
        )


def create_access_key(user):
    """A new active key of `user`, recording who made it; its `secret` reads as plaintext on
    the returned instance (show it once: nothing shows it again)."""
    _assert_may_manage_keys_of(user)
    key_id, secret = new_key_pair()
    with transaction.atomic():
        key = AccessKey.objects.create(
            access_key_id=key_id,
            secret=secret,
            user=user,
            created_by=audit.acting_name(),
            created_via=audit.acting_through(),
        )
        audit.record_change(AuditEntry.Action.CREATE, key)
    return key


def set_active(key, active):
    """Activate or deactivate `key`; False when it already was (nothing changed, no entry)."""
    _assert_may_manage_keys_of(key.user)
    with transaction.atomic():
        current = without_secret(AccessKey.objects.select_for_update()).get(pk=key.pk)
        if current.is_active == active:
            key.is_active = active
            return False
        before = audit.snapshot(current)
        AccessKey.objects.filter(pk=key.pk).update(is_active=active)
        key.is_active = current.is_active = active
        audit.record_change(AuditEntry.Action.UPDATE, current, before)
    return True


def delete_access_key(key):
    """Delete `key` for good (requests signed with it are refused like an unknown key's). Its
    secret is not read when `key` was loaded `without_secret()`."""
    _assert_may_manage_keys_of(key.user)
    with transaction.atomic():
        audit.record(
            AuditEntry.Action.DELETE, "accesskey", key.pk, key.access_key_id, audit.snapshot(key)
        )
        AccessKey.objects.filter(pk=key.pk).delete()
