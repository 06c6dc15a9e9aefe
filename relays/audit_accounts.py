"""Accounts in the audit log: who may do what is as much the store's business as the relays
are. Every change of a user or a group, and of their groups and permissions, is recorded,
whatever made it (the admin, `createsuperuser`, a shell), by signals: Django's own user and
group code writes these rows, so there is no write service to call instead.

Granting `is_superuser`, or `reveal_relay_credentials`, is the change an attacker with a narrow
account wants most; it reads in the log as any other change, with the actor and the door.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from relays import audit
from relays.models import AuditEntry

# Bookkeeping a login writes (and a password hash upgrade on login): not a change of the account.
_NOT_CHANGES = {"last_login", "password"}
_SKIPPED = {"last_login"}


def _snapshot(instance):
    return {
        key: value
        for key, value in audit.snapshot(instance).items()
        if key not in _SKIPPED and key != "id"
    }


def _name(instance):
    return str(instance)


def _remember_before(sender, instance, raw=False, **kwargs):
    if raw:
        return
    old = sender.objects.filter(pk=instance.pk).first() if instance.pk is not None else None
    instance._audit_before = _snapshot(old) if old is not None else None


def _record_save(sender, instance, created, raw=False, update_fields=None, **kwargs):
    if raw or (update_fields is not None and set(update_fields) <= _NOT_CHANGES):
        return
    before = None if created else getattr(instance, "_audit_before", None)
    action = AuditEntry.Action.CREATE if created else AuditEntry.Action.UPDATE
    audit.record(
        action, sender._meta.model_name, instance.pk, _name(instance), before, _snapshot(instance)
    )


def _record_delete(sender, instance, **kwargs):
    audit.record(
        AuditEntry.Action.DELETE,
        sender._meta.model_name,
        instance.pk,
        _name(instance),
        _snapshot(instance),
    )


def _names(instance, accessor):
    related = getattr(instance, accessor).all()
    model = related.model
    if model._meta.model_name == "permission":
        return sorted(
            f"{p.content_type.app_label}.{p.codename}"
            for p in related.select_related("content_type")
        )
    return sorted(str(r) for r in related)


def _record_m2m(accessor):
    """The handler for one many-to-many relation (`accessor` on the instance that changed)."""

    def handler(sender, instance, action, reverse, **kwargs):
        if reverse:
            # A permission's or group's side (group.user_set.add(user)): recorded on that
            # side, under the relation's name there.
            name = kwargs["model"]._meta.model_name + "s"
            field = accessor_of_reverse(instance, sender)
        else:
            name, field = accessor, accessor
        if field is None:
            return
        if action.startswith("pre_"):
            instance._audit_m2m_before = _names(instance, field)
        elif action.startswith("post_"):
            audit.record(
                AuditEntry.Action.UPDATE,
                instance._meta.model_name,
                instance.pk,
                _name(instance),
                {name: getattr(instance, "_audit_m2m_before", [])},
                {name: _names(instance, field)},
            )

    return handler


def accessor_of_reverse(instance, through):
    """The accessor on `instance` of the many-to-many relation stored in `through`."""
    for relation in instance._meta.related_objects:
        if relation.many_to_many and relation.through is through:
            return relation.get_accessor_name()
    return None


def connect():
    User = get_user_model()
    for model in (User, Group):
        uid = f"relays.audit_accounts.{model._meta.label_lower}"
        pre_save.connect(_remember_before, sender=model, dispatch_uid=f"{uid}.pre")
        post_save.connect(_record_save, sender=model, dispatch_uid=f"{uid}.post")
        post_delete.connect(_record_delete, sender=model, dispatch_uid=f"{uid}.delete")
    for through, accessor in (
        (User.groups.through, "groups"),
        (User.user_permissions.through, "user_permissions"),
        (Group.permissions.through, "permissions"),
    ):
        m2m_changed.connect(
            _record_m2m(accessor),
            sender=through,
            weak=False,
            dispatch_uid=f"relays.audit_accounts.{through._meta.label_lower}",
        )
