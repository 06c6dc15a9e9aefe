"""TagResource, UntagResource and ListTagsForResource on relays, and the TagList shape that
CreateRelay shares."""

from django.conf import settings
from django.db import transaction

from relays import audit
from relays import validators as v
from relays.mailmanager.shapes import TAG_KEY, TAG_VALUE, TAGGABLE_ARN, AwsError, invalid, relay_arn
from relays.models import AuditEntry, RelayServer, RelayTag


def tag_list(value, member):
    """A TagList as {key: value}; every constraint of the model, `aws:` keys reserved."""
    if not isinstance(value, list) or len(value) > 200:
        raise invalid(f"{member} must be a list of at most 200 tags")
    tags = {}
    for i, tag in enumerate(value):
        if not isinstance(tag, dict) or set(tag) != {"Key", "Value"}:
            raise invalid(f"{member}[{i}] must have exactly the members Key and Value")
        key, val = tag["Key"], tag["Value"]
        if not isinstance(key, str) or not TAG_KEY.fullmatch(key):
            raise invalid(f"{member}[{i}].Key must match {TAG_KEY.pattern}")
        if key.lower().startswith("aws:"):
            raise invalid(f"{member}[{i}].Key must not start with aws: (reserved)")
        if not isinstance(val, str) or not TAG_VALUE.fullmatch(val):
            raise invalid(f"{member}[{i}].Value must match {TAG_VALUE.pattern}")
        if key in tags:
            raise invalid(f"{member}[{i}].Key {key} is given twice")
        tags[key] = val
    return tags


def assert_tag_quota(count):
    if count > settings.MAILMANAGER_MAX_TAGS:
        raise AwsError(
            "ServiceQuotaExceededException",
            f"a resource may have at most {settings.MAILMANAGER_MAX_TAGS} tags",
            402,
        )


def tags_of(relay):
    return dict(relay.tags.order_by("key").values_list("key", "value"))


def record_tags(relay, before):
    """Audit a change of a relay's tags (no entry when nothing changed)."""
    audit.record(
        AuditEntry.Action.UPDATE,
        relay.type,
        relay.pk,
        relay.name,
        {"tags": before},
        {"tags": tags_of(relay)},
    )


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
        before = tags_of(relay)
        assert_tag_quota(len(set(before) | set(tags)))
        for key, value in tags.items():  # upsert: an existing key gets the new value
            RelayTag.objects.update_or_create(relay=relay, key=key, defaults={"value": value})
        record_tags(relay, before)
    return {}


def untag_resource(body, user):
    keys = body.get("TagKeys")
    if (
        not isinstance(keys, list)
        or len(keys) > 200
        or not all(isinstance(k, str) and TAG_KEY.fullmatch(k) for k in keys)
    ):
        raise invalid(f"TagKeys must be a list of at most 200 keys matching {TAG_KEY.pattern}")
    with transaction.atomic():
        relay = RelayServer.objects.select_for_update().get(pk=_tagged_relay(body).pk)
        before = tags_of(relay)
        relay.tags.filter(key__in=keys).delete()  # keys that are not there: nothing to do
        record_tags(relay, before)
    return {}


def list_tags_for_resource(body, user):
    relay = _tagged_relay(body)
    return {"Tags": [{"Key": t.key, "Value": t.value} for t in relay.tags.all()]}
