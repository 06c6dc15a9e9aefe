"""The admin: people manage the same records, under the same rules, as the two APIs."""

from django import forms
from django.contrib import admin

from relays import services
from relays.errors import ValidationFailed
from relays.models import RelayServer


class VirtualMtaForm(forms.ModelForm):
    """Adds the rule that spans rows (no delivery loop) to the model's own validation."""

    def clean(self):
        cleaned = super().clean()
        target = cleaned.get("redirect")
        if target is not None:
            # The admin's change view runs in one transaction, so this lock holds until the
            # save, exactly as in the write services.
            services.lock_references()
            try:
                services.assert_no_loop(self.instance, [target], "redirect")
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
