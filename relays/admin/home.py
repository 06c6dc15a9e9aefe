"""The admin's branding and home page: "RelayAPI", and an overview of the store (records per
type, paused IP addresses, the default VirtualMTA, the relay-server quota) above the model list."""

from django.conf import settings
from django.contrib import admin
from django.urls import reverse

from relays import services
from relays.admin.settings_pages import vmta_link
from relays.models import IpAddress, RecordCount, VirtualMta

admin.site.site_header = "RelayAPI"
admin.site.site_title = "RelayAPI"
admin.site.index_title = "RelayAPI administration"
admin.site.site_url = "/"
admin.site.index_template = "admin/relayapi_index.html"

# (type, admin model name, plural label), in the order the overview lists them
TYPES = [
    (VirtualMta.Type.RELAY_SERVER, "relayserver", "Relay servers"),
    (VirtualMta.Type.IP_ADDRESS, "ipaddress", "IP addresses"),
    (VirtualMta.Type.ROUTING_RULE, "routingrule", "Routing rules"),
]


def quota_use(relay_servers):
    """`12 of 40 relay servers` (RELAYAPI_MAX_RELAYS), or `12 relay servers, no limit`."""
    limit = settings.RELAYAPI_MAX_RELAYS
    if limit is None:
        return f"{relay_servers} relay servers, no limit"
    return f"{relay_servers} of {limit} relay servers"


def overview(user):
    """The home page's figures, each only for a user who may view that model: rows of
    (label, value, link or None). A few small queries, whatever the size of the store."""
    rows = []
    # Kept by database triggers: no table is counted row by row.
    counts = {row.type: row.count for row in RecordCount.objects.all()}
    for vmta_type, model, label in TYPES:
        if user.has_perm(f"relays.view_{model}"):
            url = reverse(f"admin:relays_{model}_changelist")
            rows.append((label, counts.get(vmta_type, 0), url))
    if user.has_perm("relays.view_ipaddress"):
        url = reverse("admin:relays_ipaddress_changelist") + "?delivery=paused"
        rows.append(
            ("Paused IP addresses", IpAddress.objects.filter(delivery_paused=True).count(), url)
        )
    if user.has_perm("relays.view_defaultvirtualmta"):
        url = reverse("admin:relays_defaultvirtualmta_changelist")
        rows.append(("Default VirtualMTA", vmta_link(services.get_default_virtual_mta()), url))
    if user.has_perm("relays.view_relayserver"):
        rows.append(
            ("Relay-server quota", quota_use(counts.get(VirtualMta.Type.RELAY_SERVER, 0)), None)
        )
    return rows


def _index(request, extra_context=None, _site_index=admin.site.index):
    context = {"relayapi_overview": overview(request.user), **(extra_context or {})}
    return _site_index(request, context)


admin.site.index = _index
