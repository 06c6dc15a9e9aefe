"""An IP address's delivery status in the admin: a "Paused" / "Delivering" column and filter, and
bulk "Pause delivery" / "Resume delivery" actions written through the same service as the API's
PUT (one audited update per address that changes)."""

from django.contrib import admin, messages

from relays import audit, services
from relays.errors import RelayError
from relays.models import IpAddress

PAUSED, DELIVERING = "Paused", "Delivering"


class DeliveryStatusFilter(admin.SimpleListFilter):
    title = "delivery"
    parameter_name = "delivery"

    def lookups(self, request, model_admin):
        return [("paused", PAUSED), ("delivering", DELIVERING)]

    def queryset(self, request, queryset):
        if self.value() == "paused":
            return queryset.filter(delivery_paused=True)
        if self.value() == "delivering":
            return queryset.filter(delivery_paused=False)
        return queryset


class IpDeliveryStatus:
    """Mixed into the IP address admin."""

    actions = ["pause_delivery", "resume_delivery"]

    @admin.display(description="Delivery", ordering="delivery_paused")
    def delivery_status(self, obj):
        return PAUSED if obj.delivery_paused else DELIVERING

    @admin.action(description="Pause delivery", permissions=["change"])
    def pause_delivery(self, request, queryset):
        self._set_paused(request, queryset, True)

    @admin.action(description="Resume delivery", permissions=["change"])
    def resume_delivery(self, request, queryset):
        self._set_paused(request, queryset, False)

    def _set_paused(self, request, queryset, paused):
        verb = "Paused" if paused else "Resumed"
        changed, unchanged, refused = [], 0, []
        with audit.acting("admin", request):
            for ip in queryset.order_by("id"):
                if ip.delivery_paused == paused:
                    unchanged += 1
                    continue
                try:
                    services.update_virtual_mta(IpAddress, ip.pk, {"delivery_paused": paused})
                except RelayError as error:
                    refused.append(f"{ip.name}: {'; '.join(error.messages)}")
                else:
                    changed.append(ip.name)
        summary = f"{verb} delivery through {_count(len(changed))}"
        if changed:
            summary += f" ({', '.join(changed[:20])}{', ...' if len(changed) > 20 else ''})"
        if unchanged:
            already = "already paused" if paused else "already delivering"
            summary += f"; {_count(unchanged)} {'was' if unchanged == 1 else 'were'} {already}"
        self.message_user(request, summary + ".", messages.SUCCESS)
        for problem in refused:
            self.message_user(request, f"Not changed: {problem}", messages.ERROR)


def _count(n):
    return f"{n} IP address" if n == 1 else f"{n} IP addresses"
