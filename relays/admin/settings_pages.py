"""The server's default VirtualMTA as one setting page (no list, no add, no delete), written
through the same service as the API's `PUT /virtual_mtas/default`."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html

from relays import audit, references, services
from relays.admin.audited import AuditedAdmin
from relays.errors import RelayError, ValidationFailed
from relays.models import DefaultVirtualMta

SETTING_ID = 1  # the single row (a database constraint keeps it the only one)
ADMIN_MODEL = {
    "ip_address": "ipaddress",
    "relay_server": "relayserver",
    "routing_rule": "routingrule",
}


def reference(text):
    """A typed name or id as the API's reference hash (names are never integers); None: blank."""
    text = text.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():  # str.isdigit() also takes superscripts, other scripts
        return {"id": int(text), "name": None}
    return {"id": None, "name": text}


def vmta_link(vmta):
    """`relay_server 4 (relay-1)`, linked to its admin page."""
    if vmta is None:
        return "none"
    url = reverse(f"admin:relays_{ADMIN_MODEL[vmta.type]}_change", args=[vmta.pk])
    return format_html('<a href="{}">{}</a>', url, references.describe(vmta))


class DefaultVirtualMtaForm(forms.ModelForm):
    # A name, not a <select> of every VirtualMTA: there may be 100,000 of them.
    default = forms.CharField(
        label="Default VirtualMTA",
        required=False,
        max_length=200,
        help_text="The name (any case) or id of an IP address, relay server or routing rule that "
        "delivers mail naming no VirtualMTA, or one that does not exist. Blank: no default.",
    )

    class Meta:
        model = DefaultVirtualMta
        fields = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = self.instance.virtual_mta if self.instance.virtual_mta_id else None
        self.fields["default"].initial = current.name if current else ""

    def clean_default(self):
        ref = reference(self.cleaned_data["default"])
        if ref is not None:
            try:
                # The service resolves it again under its lock when saving; this names the
                # problem at the field.
                references.resolve_references([("virtual_mta", ref)])
            except ValidationFailed as error:
                raise forms.ValidationError(error.messages) from None
        return ref


@admin.register(DefaultVirtualMta)
class DefaultVirtualMtaAdmin(AuditedAdmin):
    form = DefaultVirtualMtaForm
    readonly_fields = ["current_default"]

    def audit_type(self, obj):
        return "default_virtual_mta"  # as services.set_default_virtual_mta records it

    @admin.display(description="Current default")
    def current_default(self, obj):
        return vmta_link(obj.virtual_mta if obj and obj.virtual_mta_id else None)

    def get_fields(self, request, obj=None):
        if not self.has_change_permission(request, obj):
            return ["current_default"]
        return ["current_default", "default"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_object(self, request, object_id, from_field=None):
        if str(object_id) != str(SETTING_ID):
            return None
        # Before anything was ever set there is no row: the page shows "none" and saving creates it.
        found = self.get_queryset(request).select_related("virtual_mta").filter(pk=SETTING_ID)
        return found.first() or DefaultVirtualMta(id=SETTING_ID)

    def _setting_page(self):
        return HttpResponseRedirect(reverse("admin:relays_defaultvirtualmta_change", args=[1]))

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        return self._setting_page()

    def add_view(self, request, form_url="", extra_context=None):
        # The setting always exists (as "none" at first): "add" is its one page.
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        return self._setting_page()

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except RelayError as error:
            # Lost a race after the form was checked (the target was deleted meanwhile).
            for message in error.messages:
                self.message_user(request, message, messages.ERROR)
            return self._setting_page()

    def save_model(self, request, obj, form, change):
        with audit.acting("admin", request):
            services.set_default_virtual_mta(form.cleaned_data["default"])
        obj.refresh_from_db()

    def response_change(self, request, obj):
        message = format_html("The default VirtualMTA is now {}.", self.current_default(obj))
        self.message_user(request, message, messages.SUCCESS)
        return self._setting_page()
