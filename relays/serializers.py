"""GreenArrow v3 request and response shapes.

Types are strict (an integer is a JSON integer, a string a JSON string) and every message is a
predicate, so `flatten_errors` can name each problem by its path: `destination.port must be an
integer from 1 to 65535`.
"""

from rest_framework import serializers

from relays import validators as v

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
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:
            self.fail("unstorable")
        if "\x00" in data:
            self.fail("unstorable")
        return data

    def to_representation(self, value):
        return value


class ReferenceField(StrictField):
    """A reference hash `{type, id, name}`: `type` is read-only, `id` wins over `name`.

    Resolving it to a record is the write service's job (it needs the database and a lock);
    this field only checks the shape and returns `{"id": ..., "name": ...}`.
    """

    known_keys = {"type", "id", "name"}
    default_error_messages = {
        **MESSAGES,
        "invalid": "must be a hash with an id or a name",
        "id": "id must be a positive integer",
        "name": "name must be a string",
    }

    def to_internal_value(self, data):
        if not isinstance(data, dict) or (data.get("id") is None and data.get("name") is None):
            self.fail("invalid")
        ref_id, name = data.get("id"), data.get("name")
        if ref_id is not None and (type(ref_id) is not int or not 1 <= ref_id <= 2**63 - 1):
            self.fail("id")
        if ref_id is None and not isinstance(name, str):
            self.fail("name")
        return {"id": ref_id, "name": name}

    def to_representation(self, value):
        return value.reference


class StrictSerializer(serializers.Serializer):
    default_error_messages = {**MESSAGES, "invalid": "must be a hash", "null": "must be a hash"}


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
        elif isinstance(value, dict) and hasattr(field, "known_keys"):
            found += [f"{path}.{k}" for k in value if k not in field.known_keys]
    return found


def flatten_errors(errors, prefix=""):
    """DRF's nested error dict as one sentence per problem, each starting with its path."""
    if isinstance(errors, list):
        return [f"{prefix.rstrip('.')} {message}".strip() for message in errors]
    found = []
    for key, value in errors.items():
        if key == "non_field_errors":
            found += flatten_errors(value, prefix)
        else:
            found += flatten_errors(value, f"{prefix}{key}.")
    return found


# --- relay servers --------------------------------------------------------------------------


class SourceIpSerializer(StrictSerializer):
    ip = StringField(source="source_ip", validators=[v.ipv4_dotted])
    hostname = StringField(source="source_hostname", validators=v.HOSTNAME_VALIDATORS)


class DestinationSerializer(StrictSerializer):
    hostname = StringField(source="destination_hostname", validators=v.HOSTNAME_VALIDATORS)
    port = IntegerField(source="destination_port", low=1, high=65535)
    username = StringField(
        source="destination_username",
        required=False,
        allow_null=True,
        validators=[v.credential_length],
    )
    password = StringField(
        source="destination_password",
        required=False,
        allow_null=True,
        validators=[v.credential_length],
    )


class ThrottleLimitsSerializer(StrictSerializer):
    max_concurrent_connections = IntegerField()
    max_messages_per_hour = IntegerField()


class RelayServerSerializer(StrictSerializer):
    id = serializers.IntegerField(read_only=True)
    name = StringField(validators=v.NAME_VALIDATORS)
    source_ip = SourceIpSerializer(source="*")
    destination = DestinationSerializer(source="*")
    throttle_limits = ThrottleLimitsSerializer(source="*")
    redirect = ReferenceField(required=False, allow_null=True)
