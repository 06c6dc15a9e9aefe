"""The audit log: every change to the store, whatever door it came through, recorded in the same
transaction as the change.

A facade says who is acting (`with acting("greenarrow", request): ...`); the write services
call `record()` with the record before and after. Outside any request (a management command, a
shell) the actor is the operating-system user the process runs as (its uid, not `$LOGNAME` or
`$USER`, which anyone can set) and the door is `command`. Secrets are never
written: a stored credential shows as `(redacted)`, or `(redacted, changed)` when the change
replaced it.
"""

import os
import pwd
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from relays.models import AuditEntry, DeliverThrough, DomainOverride, RoutingRule

# Model fields holding a credential; their values never reach the log.
SECRET_FIELDS = {"destination_username", "destination_password", "secret", "password"}
REDACTED, CHANGED = "(redacted)", "(redacted, changed)"
# Bookkeeping that every write changes and that says nothing about the change itself.
_SKIPPED = {"created_at", "updated_at", "virtualmta_ptr_id", "version"}


@dataclass(frozen=True)
class Actor:
    facade: str
    request: object = None  # the HttpRequest: its user is known only once it is authenticated
    user: object = None
    access_key: object = None  # Mail Manager: the AccessKey the request was signed with


_actor = ContextVar("relays_audit_actor", default=None)


@contextmanager
def acting(facade, request=None, user=None, access_key=None):
    """Changes inside the block are made through `facade`, for `request` (or by `user`, with
    `access_key` when the request was signed with one)."""
    token = _actor.set(Actor(facade, request, user, access_key))
    try:
        yield
    finally:
        _actor.reset(token)


def os_user():
    """The operating-system user this process runs as, by its effective uid."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # a uid with no passwd entry (containers)
        return f"uid {uid}"


def acting_user():
    """The authenticated user acting now, or None (a management command, a shell, or a request
    not yet authenticated)."""
    actor = _actor.get() or Actor("command")
    user = actor.user or getattr(actor.request, "user", None)
    return user if getattr(user, "is_authenticated", False) else None


def acting_through():
    """The door in use: greenarrow, mailmanager, admin or command."""
    return (_actor.get() or Actor("command")).facade


def acting_name():
    """Who is acting, as the audit log names them."""
    return _who()["actor"]


def caller_may(permission):
    """Whether whoever is acting holds `permission`. The operator at a shell (no user: a
    management command) holds every permission: they have the database and its key anyway."""
    user = acting_user()
    if user is None:
        return acting_through() == "command"
    return user.is_active and user.has_perm(permission)


def _who():
    actor = _actor.get() or Actor("command")
    request = actor.request
    user = acting_user()
    if user is not None:
        name, user_id = user.get_username(), user.pk
    elif actor.facade == "command":
        name, user_id = os_user(), None
    else:
        name, user_id = "", None
    address = None
    if request is not None:
        address = getattr(request, "client_address", None) or request.META.get("REMOTE_ADDR")
    key = actor.access_key
    return {
        "access_key_id": key.access_key_id if key is not None else "",
        "access_key_maker": key.created_by[:150] if key is not None else "",
        "actor": name[:150],
        "actor_id": user_id,
        "facade": actor.facade,
        "address": address or None,
        "request_id": getattr(request, "request_id", "") or "",
    }


def _plain(value):
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def _unread_secret(record, attname):
    """A secret the record was loaded without (relays.crypto.without_secrets): redacted
    without being read, which might not even decrypt; null when the query said none is stored."""
    return None if getattr(record, f"{attname}_stored", True) is False else REDACTED


def snapshot(record):
    """The record's own values as a JSON-able dict (a routing rule with its routes); secrets in
    clear, for `record()` to compare and redact, except those the record was loaded without
    (already redacted, never read). A few queries for a routing rule."""
    deferred = record.get_deferred_fields()
    data = {
        field.attname: _unread_secret(record, field.attname)
        if field.attname in deferred and field.attname in SECRET_FIELDS
        else _plain(field.value_from_object(record))
        for field in record._meta.concrete_fields
        if field.attname not in _SKIPPED
    }
    if isinstance(record, RoutingRule) and record.pk is not None:
        targets = {}
        for row in DeliverThrough.objects.filter(rule=record).order_by("override_id", "position"):
            targets.setdefault(row.override_id, []).append(
                [row.virtual_mta_id, row.portion_of_mail]
            )
        data["default_deliver_through"] = targets.get(None, [])
        data["domain_overrides"] = [
            {
                "id": override.id,
                "domains": override.domain_list,
                "randomization_type": override.randomization_type,
                "deliver_through": targets.get(override.id, []),
            }
            for override in DomainOverride.objects.filter(rule=record).prefetch_related("domains")
        ]
    return data


def _redacted(before, after):
    before, after = dict(before or {}) or None, dict(after or {}) or None
    for key in SECRET_FIELDS:
        old = before.get(key) if before else None
        new = after.get(key) if after else None
        if before and old is not None:
            before[key] = REDACTED
        if after and new is not None:
            after[key] = CHANGED if before and old != new else REDACTED
    return before, after


def record(action, record_type, record_id, record_name, before=None, after=None):
    """Write one entry (inside the caller's transaction). An update that changed nothing is not
    a change and leaves no entry."""
    if action == AuditEntry.Action.UPDATE and before == after:
        return None
    before, after = _redacted(before, after)
    return AuditEntry.objects.create(
        action=action,
        record_type=record_type,
        record_id=record_id,
        record_name=(record_name or "")[:200],
        before=before,
        after=after,
        **_who(),
    )


def record_change(action, instance, before=None):
    """`record()` for a model instance: its type, id and name, and its values now (none after a
    delete)."""
    after = None if action == AuditEntry.Action.DELETE else snapshot(instance)
    record_type = getattr(instance, "type", None) or instance._meta.model_name
    name = getattr(instance, "name", None) or str(instance)
    return record(action, record_type, instance.pk, name, before, after)


def tags_of(relay):
    """A relay's Mail Manager tags as {key: value}. One query."""
    return dict(relay.tags.order_by("key").values_list("key", "value"))


def record_tags(relay, before):
    """Audit a change of a relay's tags from `before` ({key: value}) to what is stored now (no
    entry when nothing changed). One query, and one more for the entry."""
    record(
        AuditEntry.Action.UPDATE,
        relay.type,
        relay.pk,
        relay.name,
        {"tags": before},
        {"tags": tags_of(relay)},
    )
