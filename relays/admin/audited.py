"""The audit log in the admin: changes made here are audited like the APIs', a record's History
page is its audit log, and the log itself is read-only."""

from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.utils.text import smart_split

from relays import audit
from relays import validators as v
from relays.models import AuditEntry


class BrowserInputs:
    """What a browser can send, bounded before it reaches the database: an id in the URL that
    no record can have (20 digits) is "no such record" (SQLite cannot even bind it), and a
    search of more words than SEARCH_TERMS_MAX is refused with a message instead of becoming a
    query the database cannot finish in time (each word is one more OR across the searched
    columns, ANDed with the others)."""

    SEARCH_TERMS_MAX = 10

    def get_object(self, request, object_id, from_field=None):
        if from_field is None and not v.is_record_id(str(object_id)):
            return None
        return super().get_object(request, object_id, from_field)

    def changelist_view(self, request, extra_context=None):
        # A filter or search with text no database column can hold (NUL, unpaired surrogates:
        # PostgreSQL refuses them) matches nothing; it is dropped with a message, not a 500.
        if not all(
            v.is_storable(key) and all(v.is_storable(value) for value in values)
            for key, values in request.GET.lists()
        ):
            messages.error(
                request,
                "The search or filter contained characters no record can hold (NUL); it was "
                "dropped.",
            )
            return HttpResponseRedirect(request.path)
        return super().changelist_view(request, extra_context)

    def get_search_results(self, request, queryset, search_term):
        terms = list(smart_split(search_term))
        if len(terms) > self.SEARCH_TERMS_MAX:
            messages.error(
                request,
                f"A search takes at most {self.SEARCH_TERMS_MAX} words; this one has "
                f"{len(terms)}. Nothing was searched.",
            )
            return queryset.none(), False
        return super().get_search_results(request, queryset, search_term)


class AuditedAdmin(BrowserInputs, admin.ModelAdmin):
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


def changes_since(record, version, current, shown=5):
    """What the writes from `version` to `current` of `record` changed, newest first, one
    sentence each (at most `shown`): who, through which door, when, and which fields."""
    if version is None:
        return []
    count = min(shown, max(0, current - version))
    entries = AuditEntry.objects.filter(
        record_type=getattr(record, "type", None) or record._meta.model_name,
        record_id=record.pk,
        action=AuditEntry.Action.UPDATE,
    )[:count]
    return [
        f"Changed by {entry.actor or 'someone'} via {entry.facade} at "
        f"{entry.at:%Y-%m-%d %H:%M:%S}: "
        + ", ".join(
            f"{field} is now {new!r}" if field not in audit.SECRET_FIELDS else f"{field} changed"
            for field, _old, new in _changes(entry.before or {}, entry.after or {})
        )
        for entry in entries
    ]


def _changes(before, after):
    """(field, old, new) for each value an entry changed."""
    return [
        (key, before.get(key), after.get(key))
        for key in sorted(set(before) | set(after))
        if before.get(key) != after.get(key)
    ]


@admin.register(AuditEntry)
class AuditEntryAdmin(BrowserInputs, admin.ModelAdmin):
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
