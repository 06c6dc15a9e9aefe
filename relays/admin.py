"""The admin: people manage the same records, under the same rules, as the two APIs."""

from django import forms
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from relayapi.clients import client_address
from relays import audit, lockout, references
from relays.errors import ValidationFailed
from relays.models import (
    AuditEntry,
    DefaultVirtualMta,
    DeliverThrough,
    DomainOverride,
    IpAddress,
    LoginFailure,
    RelayServer,
    RoutingRule,
)


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


class VirtualMtaForm(forms.ModelForm):
    """Adds the rule that spans rows (no delivery loop) to the model's own validation."""

    def clean(self):
        cleaned = super().clean()
        target = cleaned.get("redirect")
        if target is not None:
            # The admin's change view runs in one transaction, so this lock holds until the
            # save, exactly as in the write services.
            references.lock_references()
            try:
                references.assert_hand_off_allowed(self.instance, [("redirect", [target])])
            except ValidationFailed as error:
                self.add_error("redirect", error.messages)
        return cleaned


class RelayServerForm(VirtualMtaForm):
    """The stored SMTP password is write-only here: the page never contains it. A blank
    password keeps the stored one; "clear credentials" removes username and password."""

    destination_password = forms.CharField(
        label="SMTP password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: leave blank to keep the stored password.",
    )
    clear_credentials = forms.BooleanField(
        required=False,
        label="Clear stored credentials",
        help_text="Remove the stored SMTP username and password (no SMTP authentication).",
    )

    class Meta:
        model = RelayServer
        fields = [
            "name",
            "source_ip",
            "source_hostname",
            "destination_hostname",
            "destination_port",
            "destination_username",
            "destination_password",
            "max_concurrent_connections",
            "max_messages_per_hour",
            "redirect",
            "secret_arn",
        ]

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("clear_credentials"):
            cleaned["destination_username"] = None
            cleaned["destination_password"] = None
        elif not cleaned.get("destination_password"):
            cleaned["destination_password"] = self.instance.destination_password
        return cleaned


@admin.register(RelayServer)
class RelayServerAdmin(AuditedAdmin):
    form = RelayServerForm
    list_display = [
        "id",
        "name",
        "destination_hostname",
        "destination_port",
        "source_ip",
        "redirect",
    ]
    search_fields = ["name", "destination_hostname"]
    ordering = ["id"]


@admin.register(IpAddress)
class IpAddressAdmin(AuditedAdmin):
    form = VirtualMtaForm
    list_display = ["id", "name", "ip", "hostname", "delivery_paused", "redirect"]
    search_fields = ["name", "ip", "hostname"]
    ordering = ["id"]


class ReadOnlyInline(admin.TabularInline):
    # Routes are edited through the API, whose service checks targets and loops as a whole;
    # the admin shows them.
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class DeliverThroughInline(ReadOnlyInline):
    model = DeliverThrough
    fk_name = "rule"
    fields = ["override", "position", "virtual_mta", "portion_of_mail"]


class DomainOverrideInline(ReadOnlyInline):
    model = DomainOverride
    fields = ["position", "randomization_type"]


@admin.register(RoutingRule)
class RoutingRuleAdmin(AuditedAdmin):
    list_display = ["id", "name", "default_randomization_type"]
    search_fields = ["name"]
    ordering = ["id"]
    inlines = [DomainOverrideInline, DeliverThroughInline]


@admin.register(DefaultVirtualMta)
class DefaultVirtualMtaAdmin(AuditedAdmin):
    list_display = ["__str__"]


class LockoutAuthenticationForm(AdminAuthenticationForm):
    """The admin login form, counted with the APIs' logins (relays.lockout): a locked address or
    (username, address) pair is refused before any password is checked. Every other refusal,
    a non-staff or inactive account with the right password included, is Django's one
    "correct username and password for a staff account" message."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "locked_out": "Too many failed logins from your address. Try again in %(wait)s seconds.",
    }
    retry_after = 0

    def clean(self):
        username = self.cleaned_data.get("username")
        if username is None or not self.cleaned_data.get("password"):
            return super().clean()  # a field is missing: nothing was tried
        address = client_address(self.request)
        self.retry_after = lockout.retry_after(username, address)
        if self.retry_after:
            raise ValidationError(
                self.error_messages["locked_out"],
                code="locked_out",
                params={"wait": self.retry_after},
            )
        try:
            return super().clean()
        except ValidationError:
            lockout.record_failure(username, address, LoginFailure.Door.ADMIN)
            raise


def _login(request, extra_context=None, _site_login=admin.site.login):
    """The admin's login view; a locked-out attempt is answered 429 with Retry-After."""
    response = _site_login(request, extra_context)
    form = (getattr(response, "context_data", None) or {}).get("form")
    if getattr(form, "retry_after", 0):
        response.status_code = 429
        response["Retry-After"] = str(form.retry_after)
    return response


admin.site.login_form = LockoutAuthenticationForm
admin.site.login = _login


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
    ]
    list_filter = ["facade", "action", "record_type"]
    search_fields = ["actor", "record_name", "request_id", "=record_id"]
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
