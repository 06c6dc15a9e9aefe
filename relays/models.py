"""The delivery-path store shared by the GreenArrow API, the Mail Manager API and the admin."""

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from relays import validators as v


class VirtualMta(models.Model):
    """A delivery path: the base of IP addresses, relay servers and routing rules.

    GreenArrow gives every VirtualMTA an id from one sequence and a name that is unique across
    all types, case-insensitively; both hold here because every type is a child row of this
    table (multi-table inheritance). `redirect` sends the traffic meant for this path through
    another one; routing rules never redirect (they choose between targets instead).
    """

    class Type(models.TextChoices):
        IP_ADDRESS = "ip_address", "IP address"
        RELAY_SERVER = "relay_server", "relay server"
        ROUTING_RULE = "routing_rule", "routing rule"

    # Each subclass names its own type; the base row carries it so that a reference (a
    # redirect, a routing-rule target) can answer {type, id, name} without a join per type.
    VMTA_TYPE = None

    type = models.CharField(max_length=20, choices=Type.choices, editable=False)
    name = models.CharField(max_length=v.NAME_MAX, validators=v.NAME_VALIDATORS)
    redirect = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="redirected_from",
        help_text="Delivery meant for this path is sent through that VirtualMTA instead.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="relays_virtualmta_name_ci_unique",
                violation_error_message="name is already used by another VirtualMTA",
            ),
            models.CheckConstraint(
                condition=Q(type__in=["ip_address", "relay_server", "routing_rule"]),
                name="relays_virtualmta_type_valid",
            ),
            models.CheckConstraint(
                condition=~Q(redirect=models.F("id")),
                name="relays_virtualmta_no_self_redirect",
                violation_error_message="redirect must not point at the VirtualMTA itself",
            ),
            models.CheckConstraint(
                condition=~Q(type="routing_rule") | Q(redirect__isnull=True),
                name="relays_virtualmta_routing_rule_no_redirect",
            ),
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.type and self.VMTA_TYPE:
            self.type = self.VMTA_TYPE

    def __str__(self):
        return self.name

    @property
    def reference(self):
        """The public {type, id, name} hash that every reference to this path answers with."""
        return {"type": self.type, "id": self.id, "name": self.name}


class RelayServer(VirtualMta):
    """An SMTP destination reached from a chosen source IP and HELO name, with throttle limits.

    A username and password together switch on SMTP authentication; null means none.
    Throttle limits of 0 mean unlimited.
    """

    VMTA_TYPE = VirtualMta.Type.RELAY_SERVER
    # How the GreenArrow API names each column, for messages about model-level rules.
    API_PATHS = {
        "source_ip": "source_ip.ip",
        "source_hostname": "source_ip.hostname",
        "destination_hostname": "destination.hostname",
        "destination_port": "destination.port",
        "destination_username": "destination.username",
        "destination_password": "destination.password",
        "max_concurrent_connections": "throttle_limits.max_concurrent_connections",
        "max_messages_per_hour": "throttle_limits.max_messages_per_hour",
    }

    source_ip = models.GenericIPAddressField(protocol="IPv4", validators=[v.ipv4_dotted])
    source_hostname = models.CharField(
        "HELO hostname", max_length=v.HOSTNAME_MAX, validators=v.HOSTNAME_VALIDATORS
    )
    destination_hostname = models.CharField(
        max_length=v.HOSTNAME_MAX, validators=v.HOSTNAME_VALIDATORS
    )
    destination_port = models.PositiveIntegerField(
        validators=[MinValueValidator(1), MaxValueValidator(65535)]
    )
    # null (no authentication) and "" (an empty username) are different things to GreenArrow.
    destination_username = models.CharField(  # noqa: DJ001
        max_length=v.CREDENTIAL_MAX, null=True, blank=True, validators=[v.credential_length]
    )
    destination_password = models.CharField(  # noqa: DJ001
        max_length=v.CREDENTIAL_MAX, null=True, blank=True, validators=[v.credential_length]
    )
    max_concurrent_connections = models.PositiveIntegerField(
        help_text="0 = unlimited", validators=[MaxValueValidator(v.INT32_MAX)]
    )
    max_messages_per_hour = models.PositiveIntegerField(
        help_text="0 = unlimited", validators=[MaxValueValidator(v.INT32_MAX)]
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(destination_port__gte=1) & Q(destination_port__lte=65535),
                name="relays_relayserver_port_range",
            ),
            models.CheckConstraint(
                condition=Q(max_concurrent_connections__gte=0) & Q(max_messages_per_hour__gte=0),
                name="relays_relayserver_throttle_non_negative",
            ),
        ]
