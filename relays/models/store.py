"""The delivery-path store shared by the GreenArrow API, the Mail Manager API and the admin:
every VirtualMTA type, its routes, its counts, and the Mail Manager tags on a relay."""

import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower

from relays import validators as v
from relays.crypto import EncryptedCharField


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
    # One more on every write through the services (relays.services), under the row's lock: a
    # write that names the version it read is refused once someone else wrote in between
    # (the admin's forms; the GreenArrow API's ETag / If-Match).
    # (A database default too: rows loaded in SQL, as 0008's counts allow, start at 1.)
    version = models.PositiveBigIntegerField(default=1, db_default=1, editable=False)

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
        # A new record (built with keywords) gets its subclass's type. Rows loaded from the
        # database arrive as positional values and keep theirs; reading `self.type` here would
        # load it, one query per row, whenever a query defers it (`.only(...)`).
        if not args and self.VMTA_TYPE:
            kwargs.setdefault("type", self.VMTA_TYPE)
        super().__init__(*args, **kwargs)

    def __str__(self):
        return self.name

    @property
    def etag(self):
        """The entity tag of the record as it is now: its version (the URL names the record)."""
        return f'"v{self.version}"'

    @property
    def reference(self):
        """The public {type, id, name} hash that every reference to this path answers with."""
        return {"type": self.type, "id": self.id, "name": self.name}


class RecordCount(models.Model):
    """How many VirtualMTAs of each type exist, kept by database triggers on `VirtualMta` (see
    migration 0008), so a list answers its total without counting 100,000 rows. `version` grows
    with every insert and delete of that type: whatever is derived from the list's order (page
    boundaries) is still valid while it has not moved."""

    type = models.CharField(max_length=20, primary_key=True, choices=VirtualMta.Type.choices)
    count = models.BigIntegerField(default=0)
    version = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["type"]

    def __str__(self):
        return f"{self.type}: {self.count}"

    @classmethod
    def of(cls, *types):
        """(count, version) summed over `types` (every type when none is named). One query."""
        rows = cls.objects.all() if not types else cls.objects.filter(type__in=types)
        totals = rows.aggregate(count=models.Sum("count"), version=models.Sum("version"))
        return totals["count"] or 0, totals["version"] or 0


def new_relay_id():
    """The Mail Manager RelayId: stable, unique, `[a-zA-Z0-9-]+` (not the bare integer id)."""
    return "rl-" + secrets.token_hex(8)


def relay_arn(relay_id):
    """The Mail Manager RelayArn of the relay `relay_id`, in this server's region and account."""
    return (
        f"arn:aws:ses:{settings.MAILMANAGER_REGION}:{settings.MAILMANAGER_ACCOUNT}"
        f":mailmanager-smtp-relay/{relay_id}"
    )


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
    # Both are encrypted at rest (relays.crypto); the attributes are the plaintext.
    destination_username = EncryptedCharField(
        max_length=v.CREDENTIAL_MAX, null=True, blank=True, validators=v.USERNAME_VALIDATORS
    )
    destination_password = EncryptedCharField(
        max_length=v.CREDENTIAL_MAX, null=True, blank=True, validators=v.PASSWORD_VALIDATORS
    )
    max_concurrent_connections = models.PositiveIntegerField(
        help_text="0 = unlimited", validators=[MaxValueValidator(v.INT32_MAX)]
    )
    max_messages_per_hour = models.PositiveIntegerField(
        help_text="0 = unlimited", validators=[MaxValueValidator(v.INT32_MAX)]
    )
    # Mail Manager: its public id, and an external secret (AWS Secrets Manager ARN) that holds the
    # SMTP credentials instead of `destination_username`/`destination_password`.
    relay_id = models.CharField(
        "Mail Manager RelayId", max_length=100, unique=True, default=new_relay_id, editable=False
    )
    secret_arn = models.CharField(max_length=2048, null=True, blank=True)  # noqa: DJ001

    # What a reader without `reveal_relay_credentials` sees instead of a stored password;
    # written back in a PUT, it keeps the stored one.
    PASSWORD_MASK = "********"

    class Meta:
        ordering = ["id"]
        permissions = [
            # Not a "view" permission by name or by grant: granting every view permission must
            # not hand out passwords (SECURITY.md).
            ("reveal_relay_credentials", "Can reveal the stored SMTP passwords of relay servers"),
            # A probe connects to the destination and may send the stored credentials there.
            ("probe_relayserver", "Can probe relay servers over SMTP"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(destination_port__gte=1) & Q(destination_port__lte=65535),
                name="relays_relayserver_port_range",
            ),
            models.CheckConstraint(
                condition=Q(max_concurrent_connections__gte=0) & Q(max_messages_per_hour__gte=0),
                name="relays_relayserver_throttle_non_negative",
            ),
            # SMTP credentials come from one place: stored here, or an external secret.
            models.CheckConstraint(
                condition=Q(secret_arn__isnull=True)
                | (Q(destination_username__isnull=True) & Q(destination_password__isnull=True)),
                name="relays_relayserver_one_credential_source",
            ),
        ]

    @property
    def arn(self):
        """The Mail Manager RelayArn."""
        return relay_arn(self.relay_id)

    @property
    def own_secret_arn(self):
        """The SecretArn that names this server's own stored SMTP credentials of this relay
        (Mail Manager shows it for credentials written through GreenArrow or the admin)."""
        return (
            f"arn:aws:secretsmanager:{settings.MAILMANAGER_REGION}:{settings.MAILMANAGER_ACCOUNT}"
            f":secret:relayapi/{self.relay_id}"
        )

    def clean(self):
        # A password alone authenticates nobody (the vendor: a null username means no
        # authentication); stored, it would look like credentials Postfix cannot use.
        if self.destination_password is not None and self.destination_username is None:
            raise ValidationError(
                {
                    "destination_password": "must come with a destination.username (null both: "
                    "no authentication)"
                }
            )
        # relays_relayserver_one_credential_source, in words (the services skip constraints).
        if self.secret_arn and (
            self.destination_username is not None or self.destination_password is not None
        ):
            raise ValidationError(
                "SMTP credentials come from one place: a stored username and password, or a "
                "Secret ARN, not both"
            )

    def bind_credentials(self, destination_before, data, may_reveal):
        """Credentials are bound to their destination: a write that moves the relay (another
        host, any case aside, or port) drops the stored password, and the username unless `data`
        sets it, so that whoever may change a relay cannot send its password to a server of
        theirs. Kept when `data` gives a new password, or when the caller may reveal the
        password anyway (`may_reveal`). An external secret (Secret ARN) is a reference, not a
        stored credential, and stays. True when something was dropped."""
        host, port = destination_before
        moved = (self.destination_hostname or "").lower() != (host or "").lower() or (
            self.destination_port != port
        )
        if not moved or may_reveal or data.get("destination_password") is not None:
            return False
        had = self.destination_password is not None or (
            self.destination_username is not None and "destination_username" not in data
        )
        self.destination_password = None
        if "destination_username" not in data:
            self.destination_username = None
        return had

    def use_stored_credentials(self, data):
        """Credentials written through GreenArrow replace an external secret (Mail Manager's
        SecretArn), so the relay never has two sources of credentials."""
        if "secret_arn" not in data and (
            data.get("destination_username") or data.get("destination_password")
        ):
            self.secret_arn = None


class IpAddress(VirtualMta):
    """An outgoing IP address of this server and the HELO name it announces.

    While `delivery_paused`, every delivery attempt through it is deferred ("Delivery paused."),
    and the pause wins over a redirect. The default throttle limits apply per recipient domain;
    0 means unlimited.
    """

    VMTA_TYPE = VirtualMta.Type.IP_ADDRESS
    API_PATHS = {
        "max_concurrent_connections": "default.max_concurrent_connections",
        "max_messages_per_hour": "default.max_messages_per_hour",
    }

    ip = models.GenericIPAddressField("IP address", protocol="IPv4", validators=[v.ipv4_dotted])
    hostname = models.CharField(
        "HELO hostname", max_length=v.HOSTNAME_MAX, validators=v.HELO_VALIDATORS
    )
    delivery_paused = models.BooleanField(default=False)
    max_concurrent_connections = models.PositiveIntegerField(
        default=0, help_text="0 = unlimited", validators=[MaxValueValidator(v.INT32_MAX)]
    )
    max_messages_per_hour = models.PositiveIntegerField(
        default=0, help_text="0 = unlimited", validators=[MaxValueValidator(v.INT32_MAX)]
    )

    class Meta:
        verbose_name = "IP address"
        verbose_name_plural = "IP addresses"
        ordering = ["id"]
        indexes = [models.Index(fields=["ip"], name="relays_ipaddress_ip_idx")]
        constraints = [
            models.CheckConstraint(
                condition=Q(max_concurrent_connections__gte=0) & Q(max_messages_per_hour__gte=0),
                name="relays_ipaddress_throttle_non_negative",
            ),
        ]


class RandomizationType(models.TextChoices):
    """How a routing rule picks among its targets: per attempt, per message, per recipient."""

    RANDOM = "random"
    MESSAGE_CONSTANT = "message_constant"
    EMAIL_ADDRESS_CONSTANT = "email_address_constant"


class RoutingRule(VirtualMta):
    """Spreads mail over other VirtualMTAs by portion, with per-domain overrides.

    The default route (`randomization_type` + `deliver_through` rows without an override)
    applies to every recipient domain that no override lists.
    """

    VMTA_TYPE = VirtualMta.Type.ROUTING_RULE

    default_randomization_type = models.CharField(max_length=30, choices=RandomizationType.choices)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(default_randomization_type__in=RandomizationType.values),
                name="relays_routingrule_randomization_valid",
            ),
        ]

    @property
    def default_deliver_through(self):
        """The default route's targets (uses the prefetched `deliver_through` when there is one)."""
        return [d for d in self.deliver_through.all() if d.override_id is None]


class DomainOverride(models.Model):
    """A routing rule's own route for some recipient domains; owned by its rule."""

    rule = models.ForeignKey(RoutingRule, on_delete=models.CASCADE, related_name="domain_overrides")
    position = models.PositiveIntegerField()
    randomization_type = models.CharField(max_length=30, choices=RandomizationType.choices)

    class Meta:
        ordering = ["rule", "position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(randomization_type__in=RandomizationType.values),
                name="relays_domainoverride_randomization_valid",
            ),
        ]

    def __str__(self):
        return f"{self.rule}: override {self.position}"

    @property
    def domain_list(self):
        return [d.domain for d in self.domains.all()]


class OverrideDomain(models.Model):
    """A domain pattern an override applies to; unique case-insensitively within the rule."""

    override = models.ForeignKey(DomainOverride, on_delete=models.CASCADE, related_name="domains")
    # Denormalised from the override so the database can enforce uniqueness within the rule.
    rule = models.ForeignKey(RoutingRule, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveIntegerField()
    domain = models.CharField(max_length=260, validators=[v.domain_pattern])

    class Meta:
        ordering = ["override", "position"]
        constraints = [
            models.UniqueConstraint(
                "rule", Lower("domain"), name="relays_overridedomain_unique_in_rule"
            ),
        ]

    def __str__(self):
        return self.domain


class DeliverThrough(models.Model):
    """One target of a route: a VirtualMTA of any type and its portion of the mail.

    Portions are weights: each target gets its portion divided by the route's total.
    """

    rule = models.ForeignKey(RoutingRule, on_delete=models.CASCADE, related_name="deliver_through")
    override = models.ForeignKey(
        DomainOverride,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="deliver_through",
    )
    position = models.PositiveIntegerField()
    virtual_mta = models.ForeignKey(
        VirtualMta, on_delete=models.PROTECT, related_name="routed_from"
    )
    portion_of_mail = models.FloatField()

    class Meta:
        ordering = ["rule", "override", "position"]
        constraints = [
            models.CheckConstraint(
                condition=Q(portion_of_mail__gt=0) & Q(portion_of_mail__lte=v.PORTION_MAX),
                name="relays_deliverthrough_portion_positive",
            ),
        ]

    def __str__(self):
        return f"{self.virtual_mta} ({self.portion_of_mail})"


class DefaultVirtualMta(models.Model):
    """The server's default VirtualMTA: used when a message names none, or one that does not
    exist. A single row (id 1); `virtual_mta` may be null (no default)."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    virtual_mta = models.ForeignKey(
        VirtualMta, null=True, blank=True, on_delete=models.PROTECT, related_name="default_for"
    )

    class Meta:
        verbose_name = "default VirtualMTA"
        verbose_name_plural = "default VirtualMTA"
        constraints = [
            models.CheckConstraint(condition=Q(id=1), name="relays_defaultvirtualmta_singleton")
        ]

    def __str__(self):
        return f"default VirtualMTA: {self.virtual_mta or 'none'}"


class RelayTag(models.Model):
    """A Mail Manager tag on a relay; owned by it (deleted with it)."""

    relay = models.ForeignKey(RelayServer, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=128)
    value = models.CharField(max_length=256, blank=True)

    class Meta:
        ordering = ["relay", "key"]
        constraints = [
            models.UniqueConstraint(fields=["relay", "key"], name="relays_relaytag_key_unique")
        ]

    def __str__(self):
        return f"{self.key}={self.value}"
