"""TagResource, UntagResource, ListTagsForResource and Tags on CreateRelay, through boto3."""

import pytest
from django.test import override_settings

from relays.models import RelayServer, RelayTag
from tests.conftest import create, error, relay_payload

pytestmark = pytest.mark.django_db(transaction=True)


def arn(mm, relay_id):
    return mm.get_relay(RelayId=relay_id)["RelayArn"]


def test_tags_given_at_create_are_listed(mm):
    relay_id = create(mm, Tags=[{"Key": "team", "Value": "mail"}, {"Key": "empty", "Value": ""}])

    tags = mm.list_tags_for_resource(ResourceArn=arn(mm, relay_id))["Tags"]

    assert tags == [{"Key": "empty", "Value": ""}, {"Key": "team", "Value": "mail"}]


def test_tag_upserts_and_untag_removes_ignoring_missing_keys(mm):
    resource = arn(mm, create(mm, Tags=[{"Key": "a", "Value": "1"}]))

    mm.tag_resource(
        ResourceArn=resource, Tags=[{"Key": "a", "Value": "2"}, {"Key": "b", "Value": "3"}]
    )
    mm.untag_resource(ResourceArn=resource, TagKeys=["b", "never-there"])

    assert mm.list_tags_for_resource(ResourceArn=resource)["Tags"] == [{"Key": "a", "Value": "2"}]


def test_a_well_formed_arn_of_no_relay_is_not_found(mm):
    for resource in (
        "arn:aws:ses:us-east-1:000000000000:mailmanager-smtp-relay/rl-missing",
        "arn:aws:ses:eu-west-1:123456789012:mailmanager-rule-set/rs-1",
    ):
        with pytest.raises(mm.exceptions.ResourceNotFoundException):
            mm.list_tags_for_resource(ResourceArn=resource)


@pytest.mark.parametrize(
    "tags",
    [
        [{"Key": "aws:reserved", "Value": "x"}],
        [{"Key": "has space", "Value": "x"}],
        [{"Key": "k", "Value": "v" * 257}],
        [{"Key": "k" * 129, "Value": "v"}],
        [{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}],
    ],
)
def test_tag_constraints_are_enforced(mm, tags):
    resource = arn(mm, create(mm))

    with pytest.raises(mm.exceptions.ValidationException):
        mm.tag_resource(ResourceArn=resource, Tags=tags)
    with pytest.raises(mm.exceptions.ValidationException):
        create(mm, "other", Tags=tags)
    assert not RelayTag.objects.exists()
    assert RelayServer.objects.count() == 1


def test_a_malformed_arn_is_a_validation_error(mm):
    with pytest.raises(mm.exceptions.ValidationException):
        mm.list_tags_for_resource(ResourceArn="arn:aws:s3:::some-bucket-name")


def test_at_most_50_tags_per_relay(mm):
    fifty = [{"Key": f"k{n}", "Value": "v"} for n in range(50)]
    resource = arn(mm, create(mm, Tags=fifty))

    mm.tag_resource(
        ResourceArn=resource, Tags=[{"Key": "k0", "Value": "updated"}]
    )  # an upsert adds none
    with pytest.raises(mm.exceptions.ServiceQuotaExceededException):
        mm.tag_resource(ResourceArn=resource, Tags=[{"Key": "k50", "Value": "v"}])
    with pytest.raises(mm.exceptions.ServiceQuotaExceededException):
        create(mm, "other", Tags=[*fifty, {"Key": "k50", "Value": "v"}])
    assert RelayTag.objects.count() == 50


def test_the_relay_quota_applies_to_both_apis(mm, admin):
    create(mm, "first")

    with override_settings(RELAYAPI_MAX_RELAYS=1):
        with pytest.raises(mm.exceptions.ServiceQuotaExceededException):
            create(mm, "second")
        refused = admin.post("/relay_servers", relay_payload(name="third"))

    assert refused.json() == error(
        "validation_failed", "the maximum number of relay servers (1) is reached"
    )
    assert RelayServer.objects.count() == 1
