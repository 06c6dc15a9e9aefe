"""TagResource, UntagResource and ListTagsForResource on relays, and the TagList shape that
CreateRelay shares. The tag rules are the core's (relays.validators), shared with the admin."""

from django.core.exceptions import ValidationError
from django.db import transaction

from relays import audit
from relays import validators as v
from relays.mailmanager.shapes import (
    RELAY_ID,
    TAGGABLE_ARN,
    TAGGABLE_ARN_LENGTH,
    TAGGABLE_ARN_PATTERN,
    AwsError,
    invalid,
)
from relays.models import RelayServer, RelayTag, relay_arn


def _check(validators, value, path):
    for validator in validators:
        try:
            validator(value)
        except ValidationError as error:
            raise invalid(f"{path} {error.messages[0]}") from None


def tag_list(value, member):
    """A TagList as {key: value}; every constraint of the model, `aws:` keys reserved."""
    if not isinstance(value, list) or len(value) > 200:
        raise invalid(f"{member} must be a list of at most 200 tags")
    tags = {}
    for i, tag in enumerate(value):
        if not isinstance(tag, dict) or set(tag) != {"Key", "Value"}:
            raise invalid(f"{member}[{i}] must have exactly the members Key and Value")
        key, val = tag["Key"], tag["Value"]
        _check(v.TAG_KEY_VALIDATORS, key, f"{member}[{i}].Key")
        _check(v.TAG_VALUE_VALIDATORS, val, f"{member}[{i}].Value")
        if key in tags:
            raise invalid(f"{member}[{i}].Key {key} is given twice")
        tags[key] = val
    return tags


def assert_tag_quota(count):
    try:
        v.tag_count(count)
    except ValidationError as error:
        raise AwsError("ServiceQuotaExceededException", error.messages[0], 402) from None


def _tagged_relay(body):
    """The relay a ResourceArn names. Every ARN the model allows is read (ResourceNotFound
    when it names no relay of this server); text no database stores (NUL, an unpaired
    surrogate) is refused as everywhere else."""
    arn = body.get("ResourceArn")
    if arn is None:
        raise invalid("ResourceArn is required")
    low, high = TAGGABLE_ARN_LENGTH
    if not isinstance(arn, str) or not low <= len(arn) <= high:
        raise invalid(f"ResourceArn must be a string of {low} to {high} characters")
    if not TAGGABLE_ARN.fullmatch(arn) or not v.is_storable(arn):
        raise invalid(f"ResourceArn must match {TAGGABLE_ARN_PATTERN}")
    prefix = relay_arn("")
    relay_id = arn.removeprefix(prefix)
    found = (
        RelayServer.objects.filter(relay_id=relay_id).first()
        if arn.startswith(prefix) and RELAY_ID.fullmatch(relay_id)
        else None
    )
    if found is None:
        raise AwsError("ResourceNotFoundException", f"Resource {arn} not found", 404)
    return found


def tag_resource(body, user):
    if body.get("Tags") is None:
        raise invalid("Tags is required")
    tags = tag_list(body["Tags"], "Tags")
    with transaction.atomic():
        relay = RelayServer.objects.select_for_update().get(pk=_tagged_relay(body).pk)
        before = audit.tags_of(relay)
        assert_tag_quota(len(set(before) | set(tags)))
        for key, value in tags.items():  # upsert: an existing key gets the new value
            RelayTag.objects.update_or_create(relay=relay, key=key, defaults={"value": value})
        audit.record_tags(relay, before)
    return {}


def untag_resource(body, user):
    keys = body.get("TagKeys")
    if keys is None:
        raise invalid("TagKeys is required")
    if (
        not isinstance(keys, list)
        or len(keys) > 200
        or not all(isinstance(k, str) and v.TAG_KEY.fullmatch(k) for k in keys)
    ):
        raise invalid(f"TagKeys must be a list of at most 200 keys matching {v.TAG_KEY.pattern}")
    with transaction.atomic():
        relay = RelayServer.objects.select_for_update().get(pk=_tagged_relay(body).pk)
        before = audit.tags_of(relay)
        relay.tags.filter(key__in=keys).delete()  # keys that are not there: nothing to do
        audit.record_tags(relay, before)
    return {}


def list_tags_for_resource(body, user):
    relay = _tagged_relay(body)
    return {"Tags": [{"Key": t.key, "Value": t.value} for t in relay.tags.all()]}
