"""TagResource, UntagResource and ListTagsForResource on relays, and the TagList shape that
CreateRelay shares. The tag rules are the core's (relays.validators), shared with the admin."""

from django.core.exceptions import ValidationError
from django.db import transaction

from relays import audit
from relays import validators as v
from relays.mailmanager.shapes import TAGGABLE_ARN, AwsError, invalid
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
    arn = body.get("ResourceArn")
    if (
        not isinstance(arn, str)
        or not 20 <= len(arn) <= 1011
        or not TAGGABLE_ARN.fullmatch(arn)
        or not v.is_storable(arn)
    ):
        raise invalid("ResourceArn must be a Mail Manager resource ARN")
    prefix = relay_arn("")
    relay_id = arn.removeprefix(prefix)
    found = (
        RelayServer.objects.filter(relay_id=relay_id).first() if arn.startswith(prefix) else None
    )
    if found is None:
        raise AwsError("ResourceNotFoundException", f"Resource {arn} not found", 404)
    return found


def tag_resource(body, user):
    if "Tags" not in body:
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
