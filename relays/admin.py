"""The admin: people manage the same records, under the same rules, as the two APIs."""

from django import forms
from django.contrib import admin

from relays import references
from relays.errors import ValidationFailed
from relays.models import (
    DefaultVirtualMta,
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


@admin.register(RelayServer)
class RelayServerAdmin(admin.ModelAdmin):
    form = VirtualMtaForm
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
class IpAddressAdmin(admin.ModelAdmin):
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
class RoutingRuleAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "default_randomization_type"]
    search_fields = ["name"]
    ordering = ["id"]
    inlines = [DomainOverrideInline, DeliverThroughInline]


@admin.register(DefaultVirtualMta)
class DefaultVirtualMtaAdmin(admin.ModelAdmin):
    list_display = ["__str__"]
