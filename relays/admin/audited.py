"""The audit log in the admin: changes made here are audited like the APIs', a record's History
page is its audit log, and the log itself is read-only."""

from django.contrib import admin

from relays import audit
from relays.models import AuditEntry


class AuditedAdmin(admin.ModelAdmin):
    """Changes made here are audited like the APIs' (door `admin`), and a record's History
    page shows its audit log: the changes made through every door."""

    history_entries = 100

    def audit_type(self, obj):
        return getattr(obj, "type", None) or obj._meta.model_name

    def save_model(self, request, obj, form, change):
        before = audit.snapshot(type(obj).objects.get(pk=obj.pk)) if change else None
        with audit.acting("admin", request):
            super().save_model(request, obj, form, change)
            action = AuditEntry.Action.UPDATE if change else AuditEntry.Action.CREATE
            audit.record_change(action, obj, before)

    def delete_model(self, request, obj):
        with audit.acting("admin", request):
            audit.record(
                AuditEntry.Action.DELETE,
                self.audit_type(obj),
                obj.pk,
                getattr(obj, "name", None) or str(obj),
                audit.snapshot(obj),
            )
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def history_view(self, request, object_id, extra_context=None):
        obj = self.get_object(request, object_id)
        entries = AuditEntry.objects.none()
        if obj is not None:
            entries = AuditEntry.objects.filter(record_type=self.audit_type(obj), record_id=obj.pk)
        shown = list(entries[: self.history_entries])
        for entry in shown:
            entry.changes = _changes(entry.before or {}, entry.after or {})
        context = {"audit_entries": shown, "audit_total": entries.count(), **(extra_context or {})}
        return super().history_view(request, object_id, context)


def _changes(before, after):
    """(field, old, new) for each value an entry changed."""
    return [
        (key, before.get(key), after.get(key))
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """The audit log, read-only: it is written by the changes themselves."""

    list_display = [
        "at",
        "actor",
        "facade",
        "address",
        "action",
        "record_type",
        "record_id",
        "record_name",
        "access_key_id",
    ]
    list_filter = ["facade", "action", "record_type"]
    search_fields = ["actor", "record_name", "request_id", "=record_id", "=access_key_id"]
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
