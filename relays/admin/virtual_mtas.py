"""IP addresses, relay servers, routing rules and the default VirtualMTA in the admin, under the
same rules as the two APIs."""

from django import forms
from django.contrib import admin

from relays import references
from relays.admin.audited import AuditedAdmin
from relays.admin.ip_addresses import DeliveryStatusFilter, IpDeliveryStatus
from relays.admin.mail_manager import RelayMailManagerFields, RelayTagInline
from relays.errors import ValidationFailed
from relays.models import (
    DeliverThrough,
    DomainOverride,
    IpAddress,
    RelayServer,
    RoutingRule,
)


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
class RelayServerAdmin(RelayMailManagerFields, AuditedAdmin):
    form = RelayServerForm
    inlines = [RelayTagInline]
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
class IpAddressAdmin(IpDeliveryStatus, AuditedAdmin):
    form = VirtualMtaForm
    list_display = ["id", "name", "ip", "hostname", "delivery_status", "redirect"]
    list_filter = [DeliveryStatusFilter]
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
