"""GreenArrow v3 request and response shapes.

Types are strict (an integer is a JSON integer, a string a JSON string) and every message is a
predicate, so `flatten_errors` can name each problem by its path: `destination.port must be an
integer from 1 to 65535`.
"""

from rest_framework import serializers

from relays import validators as v
from relays.models import RelayServer

MESSAGES = {"required": "is required", "null": "must not be null"}


class StrictField(serializers.Field):
    default_error_messages = MESSAGES


class IntegerField(StrictField):
    """A JSON integer in a range; `"25"`, `25.0` and `true` are refused."""

    default_error_messages = {**MESSAGES, "invalid": "must be an integer from {low} to {high}"}

    def __init__(self, low=0, high=v.INT32_MAX, **kwargs):
        self.low, self.high = low, high
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if type(data) is not int or not self.low <= data <= self.high:
            self.fail("invalid", low=self.low, high=self.high)
        return data

    def to_representation(self, value):
        return value


class StringField(StrictField):
    """A JSON string that every database can store: no NUL, no lone surrogate."""

    default_error_messages = {
        **MESSAGES,
        "invalid": "must be a string",
        "unstorable": "must be text without NUL characters or unpaired surrogates",
    }

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        if not v.is_storable(data):
            self.fail("unstorable")
        return data

    def to_representation(self, value):
        return value


class PasswordField(StringField):
    """A stored SMTP password: shown only to readers with `reveal_relay_credentials` (superusers
    have it), as `********` to everyone else (null stays null). A PUT that sends the mask back
    keeps the stored password, so what GET answered can be PUT back whoever reads it."""

    MASK = RelayServer.PASSWORD_MASK
    default_error_messages = {
        **StringField.default_error_messages,
        "mask_on_create": f"{MASK} keeps a stored password; a new relay server has none",
    }

    def run_validation(self, data=serializers.empty):
        if data == self.MASK:
            if self.root.instance is None and not self.root.partial:
                self.fail("mask_on_create")
            raise serializers.SkipField()
        return super().run_validation(data)

    def to_representation(self, value):
        request = self.context.get("request")
        if value is None or (request and request.user.has_perm("relays.reveal_relay_credentials")):
            return value
        return self.MASK


class ReferenceField(StrictField):
    """A reference hash `{type, id, name}`: `type` is read-only, `id` wins over `name`.

    Resolving it to a record is the write service's job (it needs the database and a lock);
    this field only checks the shape and returns `{"id": ..., "name": ...}`. A `type`, or a
    `name` beside an `id`, is not used, but it is still text that must be a string every
    database could store: a hash GET answered can be sent back, and anything else is refused
    rather than dropped unseen.
    """

    known_keys = {"type", "id", "name"}
    default_error_messages = {
        **MESSAGES,
        "invalid": "must be a hash with an id or a name",
        "id": "id must be a positive integer",
        "string": "{member} must be a string",
        "unstorable": "{member} must be text without NUL characters or unpaired surrogates",
    }

    def to_internal_value(self, data):
        if not isinstance(data, dict) or (data.get("id") is None and data.get("name") is None):
            self.fail("invalid")
        ref_id, name = data.get("id"), data.get("name")
        if ref_id is not None and (type(ref_id) is not int or not 1 <= ref_id <= 2**63 - 1):
            self.fail("id")
        for key in ("name", "type"):
            text = data.get(key)
            if text is None and (key == "type" or ref_id is not None):
                continue
            if not isinstance(text, str):
                self.fail("string", member=key)
            if not v.is_storable(text):
                self.fail("unstorable", member=key)
        return {"id": ref_id, "name": name}

    def to_representation(self, value):
        return value.reference

    def unknown_keys(self, value):
        """The keys of a reference hash that are not `type`, `id` or `name`."""
        return (
            [key for key in value if key not in self.known_keys] if isinstance(value, dict) else []
        )


class StrictSerializer(serializers.Serializer):
    default_error_messages = {**MESSAGES, "invalid": "must be a hash", "null": "must be a hash"}


class BooleanField(StrictField):
    default_error_messages = {**MESSAGES, "invalid": "must be true or false"}

    def to_internal_value(self, data):
        if type(data) is not bool:
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


class PortionField(StrictField):
    """A positive JSON number (integer or decimal); portions are weights, not percentages."""

    default_error_messages = {
        **MESSAGES,
        "invalid": v.PORTION_MESSAGE,
    }

    def to_internal_value(self, data):
        if type(data) not in (int, float) or not 0 < data <= v.PORTION_MAX:
            self.fail("invalid")
        return float(data)

    def to_representation(self, value):
        return value


class NullOnlyField(StrictField):
    """An attribute of the vendor's shape that this server does not support beyond null
    (throttling templates): null is accepted and answered, anything else refused."""

    def __init__(self, reason, **kwargs):
        self.reason = reason
        super().__init__(required=False, allow_null=True, **kwargs)

    def run_validation(self, data=serializers.empty):
        if data is not serializers.empty and data is not None:
            raise serializers.ValidationError(f"must be null: {self.reason}")
        raise serializers.SkipField()

    def get_attribute(self, instance):
        return None

    def to_representation(self, value):
        return None


LIST_MESSAGES = {
    **MESSAGES,
    "not_a_list": "must be a list",
    "empty": "must not be empty",
    "min_length": "must have at least {min_length} items",
    "max_length": "must have at most {max_length} items",
}


class ListField(serializers.ListField):
    default_error_messages = LIST_MESSAGES


class StrictListSerializer(serializers.ListSerializer):
    default_error_messages = LIST_MESSAGES


class WholeSerializer(StrictSerializer):
    """A hash that is always written whole, even inside a partial update (an item of a list that
    PUT replaces as a whole): every required attribute must be present."""

    class Meta:
        list_serializer_class = StrictListSerializer

    def validate(self, attrs):
        missing = {
            name: "is required"
            for name, field in self.fields.items()
            if field.required and not field.read_only and field.source not in attrs
        }
        if missing:
            raise serializers.ValidationError(missing)
        return attrs


def unknown_attributes(serializer, data, prefix=""):
    """Paths of keys in `data` that `serializer` does not define (read-only ones are known)."""
    found = []
    for key, value in data.items():
        field = serializer.fields.get(key)
        path = f"{prefix}{key}"
        if field is None:
            found.append(path)
        elif isinstance(field, serializers.Serializer) and isinstance(value, dict):
            found += unknown_attributes(field, value, f"{path}.")
        elif isinstance(field, serializers.ListSerializer) and isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    found += unknown_attributes(field.child, item, f"{path}[{i}].")
        elif isinstance(field, ReferenceField):
            found += [f"{path}.{key}" for key in field.unknown_keys(value)]
    return found


def flatten_errors(errors, path=""):
    """DRF's nested error structure as one sentence per problem, each starting with its path:
    `default.deliver_through[1].portion_of_mail must be ...`."""
    if isinstance(errors, dict):
        found = []
        for key, value in errors.items():
            if key == "non_field_errors":
                sub = path
            elif isinstance(key, int):
                sub = f"{path}[{key}]"
            else:
                sub = f"{path}.{key}" if path else key
            found += flatten_errors(value, sub)
        return found
    if isinstance(errors, list) and all(isinstance(e, str) for e in errors):
        return [f"{path} {message}".strip() for message in errors]
    return [
        m for i, item in enumerate(errors) if item for m in flatten_errors(item, f"{path}[{i}]")
    ]


# --- relay servers --------------------------------------------------------------------------


class SourceIpSerializer(StrictSerializer):
    """The local end of the connection: the source IP and the HELO hostname."""

    ip = StringField(source="source_ip", validators=[v.ipv4_dotted])
    hostname = StringField(source="source_hostname", validators=v.HOSTNAME_VALIDATORS)


class DestinationSerializer(StrictSerializer):
    """The destination SMTP server; username and password null: no authentication."""

    hostname = StringField(source="destination_hostname", validators=v.HOSTNAME_VALIDATORS)
    port = IntegerField(source="destination_port", low=1, high=65535)
    username = StringField(
        source="destination_username",
        required=False,
        allow_null=True,
        validators=v.USERNAME_VALIDATORS,
    )
    password = PasswordField(
        source="destination_password",
        required=False,
        allow_null=True,
        validators=v.PASSWORD_VALIDATORS,
    )


class ThrottleLimitsSerializer(StrictSerializer):
    """A relay server's `throttle_limits` and an IP address's `default`: 0 means unlimited."""

    max_concurrent_connections = IntegerField()
    max_messages_per_hour = IntegerField()


class RelayServerSerializer(StrictSerializer):
    """A relay server: an SMTP destination reached from a source IP, with throttle limits
    and an optional redirect to another VirtualMTA."""

    id = serializers.IntegerField(read_only=True)
    name = StringField(validators=v.NAME_VALIDATORS)
    source_ip = SourceIpSerializer(source="*")
    destination = DestinationSerializer(source="*")
    throttle_limits = ThrottleLimitsSerializer(source="*")
    redirect = ReferenceField(required=False, allow_null=True)


# --- IP addresses ---------------------------------------------------------------------------


class IpAddressSerializer(StrictSerializer):
    """An IP address VirtualMTA: a local address with its HELO name; a paused one holds its
    mail (the pause wins over a redirect)."""

    id = serializers.IntegerField(read_only=True)
    name = StringField(validators=v.NAME_VALIDATORS)
    ip = StringField(validators=[v.ipv4_dotted])
    hostname = StringField(validators=v.HELO_VALIDATORS)
    delivery_paused = BooleanField(required=False)
    redirect = ReferenceField(required=False, allow_null=True)
    throttling_template = NullOnlyField("throttling templates are not supported by this server")
    default = ThrottleLimitsSerializer(source="*", required=False)


# --- routing rules --------------------------------------------------------------------------

RANDOMIZATION = ["random", "message_constant", "email_address_constant"]


class ChoiceField(StringField):
    def __init__(self, choices, **kwargs):
        self.choices = choices
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        data = super().to_internal_value(data)
        if data not in self.choices:
            raise serializers.ValidationError(f"must be one of {', '.join(self.choices)}")
        return data


class DeliverThroughSerializer(WholeSerializer):
    """One target of a route, always written whole: a VirtualMTA and its portion of the
    mail."""

    virtual_mta = ReferenceField()
    portion_of_mail = PortionField()


class RouteDefaultSerializer(StrictSerializer):
    """The route for domains no override matches."""

    randomization_type = ChoiceField(RANDOMIZATION, source="default_randomization_type")
    # An empty route is refused by the service (relays.services.Routes), for every door.
    deliver_through = DeliverThroughSerializer(
        many=True, max_length=v.MAX_TARGETS_PER_ROUTE, source="default_deliver_through"
    )


class DomainOverrideSerializer(WholeSerializer):
    """A route for some recipient domains, always written whole; the first override (in list
    order) with a matching pattern applies. Domains are unique (case-insensitively) across the
    rule's overrides."""

    # Writable although the vendor calls it read-only: a PUT that sends an override's id back
    # updates that override in place (it keeps its id); see Routes in services.py.
    id = IntegerField(
        low=1,
        high=2**63 - 1,
        required=False,
        help_text=(
            "Sent back, the override is updated in place and keeps its id; without it, a new "
            "override (or an existing one with the same domains, randomization and targets)."
        ),
    )
    domains = ListField(
        child=StringField(validators=[v.domain_pattern]),
        max_length=v.MAX_DOMAINS_PER_OVERRIDE,
        source="domain_list",
    )
    randomization_type = ChoiceField(RANDOMIZATION)
    deliver_through = DeliverThroughSerializer(many=True, max_length=v.MAX_TARGETS_PER_ROUTE)


class RoutingRuleSerializer(StrictSerializer):
    """A routing rule: spreads mail over other VirtualMTAs by portion, with per-domain
    overrides. `domain_overrides`, when given, is the whole new list, in order."""

    id = serializers.IntegerField(read_only=True)
    name = StringField(validators=v.NAME_VALIDATORS)
    default = RouteDefaultSerializer(source="*")
    domain_overrides = DomainOverrideSerializer(
        many=True, required=False, max_length=v.MAX_OVERRIDES_PER_RULE
    )
