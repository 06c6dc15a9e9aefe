"""A Mail Manager signature binds the whole call: the host, the time, the operation and the body
type are signed, the scope is this server's region and `ses`, and only an active key of an
active staff user signs anything."""

import io
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from django.core.management import call_command

from relays.models import RelayServer
from tests import signed
from tests.factories import RelayServerFactory, UserFactory


def body_of(response):
    return json.loads(response.content)


def aws_error(code, message):
    return {"__type": f"com.amazonaws.mailmanager#{code}", "Message": message}


@pytest.fixture
def key(db):
    UserFactory(username="boto", is_superuser=True)
    return signed.new_key("boto")


def test_a_captured_get_relay_replayed_as_delete_relay_is_refused(key):
    relay = RelayServerFactory(name="kept")
    # Signed over host and x-amz-date only; the target is added after signing.
    headers, body = signed.sign(key, "GetRelay", {"RelayId": relay.relay_id}, sign_headers=False)
    headers["X-Amz-Target"] = "MailManagerSvc.DeleteRelay"

    response = signed.send(headers, body)

    assert response.status_code == 403
    assert body_of(response) == aws_error(
        "IncompleteSignatureException", "SignedHeaders must include x-amz-target, content-type"
    )
    assert RelayServer.objects.filter(pk=relay.pk).exists()


@pytest.mark.parametrize("unsigned", ["host", "x-amz-date", "x-amz-target", "content-type"])
def test_each_binding_header_must_be_signed(key, unsigned):
    headers, body = signed.sign(key, "ListRelays")
    # Drop the header from SignedHeaders (the signature no longer matters: this is refused
    # before any key is looked up).
    authorization = headers["Authorization"]
    listed = authorization.split("SignedHeaders=")[1].split(",")[0]
    kept = ";".join(name for name in listed.split(";") if name != unsigned)
    headers["Authorization"] = authorization.replace(
        f"SignedHeaders={listed}", f"SignedHeaders={kept}"
    )

    response = signed.send(headers, body)

    assert response.status_code == 403
    assert body_of(response) == aws_error(
        "IncompleteSignatureException", f"SignedHeaders must include {unsigned}"
    )


def test_a_call_signed_over_all_of_them_is_accepted(key):
    relay = RelayServerFactory(name="read")

    response = signed.call(key, "GetRelay", {"RelayId": relay.relay_id})

    assert response.status_code == 200
    assert body_of(response)["RelayName"] == "read"


def test_the_same_signed_call_sent_twice_inside_the_window_is_accepted_twice(key):
    relay = RelayServerFactory(name="retried")
    headers, body = signed.sign(key, "GetRelay", {"RelayId": relay.relay_id})

    first, second = signed.send(headers, body), signed.send(headers, body)

    assert (first.status_code, second.status_code) == (200, 200)


def test_the_clock_skew_window_is_a_setting(key, settings):
    settings.SIGV4_MAX_SKEW_SECONDS = 60
    at = datetime.now(UTC) - timedelta(seconds=90)

    late = signed.call(key, "ListRelays", at=at)
    settings.SIGV4_MAX_SKEW_SECONDS = 120
    in_time = signed.call(key, "ListRelays", at=at)

    assert late.status_code == 403
    assert body_of(late) == aws_error(
        "InvalidSignatureException",
        "signature expired: X-Amz-Date is more than 60 seconds from the server's time",
    )
    assert in_time.status_code == 200


def test_a_signature_scoped_to_another_region_is_refused(key, settings):
    response = signed.call(key, "ListRelays", region="eu-west-1")
    settings.MAILMANAGER_REGION = "eu-west-1"
    configured = signed.call(key, "ListRelays", region="eu-west-1")

    assert response.status_code == 403
    assert body_of(response) == aws_error(
        "InvalidSignatureException",
        "Credential should be scoped to the region 'us-east-1', not 'eu-west-1'",
    )
    assert configured.status_code == 200


CREATE = {
    "RelayName": "not-made",
    "ServerName": "smtp.example.com",
    "ServerPort": 587,
    "Authentication": {"NoAuthentication": {}},
}
UNRECOGNIZED = aws_error(
    "UnrecognizedClientException", "the security token included in the request is invalid"
)


@pytest.mark.parametrize(
    "account", [{"is_staff": False}, {"is_active": False}], ids=["non-staff", "inactive"]
)
def test_a_key_of_a_user_who_may_not_log_in_is_unrecognized_whatever_the_secret(
    db, unchanged, account
):
    UserFactory(username="outsider", is_superuser=True, **account)
    key = signed.new_key("outsider")

    with unchanged():
        right = signed.call(key, "CreateRelay", CREATE)
        wrong = signed.call(
            {**key, "SecretAccessKey": "x" * 40},
            "CreateRelay",
            CREATE,
        )

    assert (right.status_code, body_of(right)) == (403, UNRECOGNIZED)
    assert (wrong.status_code, body_of(wrong)) == (403, UNRECOGNIZED)


def test_a_revoked_key_is_unrecognized(key, unchanged):
    call_command("revoke_access_key", key["AccessKeyId"], stdout=io.StringIO())

    with unchanged():
        response = signed.call(key, "CreateRelay", CREATE)

    assert (response.status_code, body_of(response)) == (403, UNRECOGNIZED)


# --- boto3, as its users run it ---


def boto3_client(live_server, key, region="us-east-1"):
    return boto3.client(
        "mailmanager",
        endpoint_url=live_server.url,
        region_name=region,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


@pytest.mark.django_db(transaction=True)
def test_boto3_signs_everything_needed_and_is_accepted(live_server):
    UserFactory(username="admin", is_superuser=True)
    mm = boto3_client(live_server, signed.new_key("admin"))

    relay_id = mm.create_relay(
        RelayName="bound",
        ServerName="smtp.example.com",
        ServerPort=587,
        Authentication={"NoAuthentication": {}},
    )["RelayId"]

    assert mm.get_relay(RelayId=relay_id)["RelayName"] == "bound"


@pytest.mark.django_db(transaction=True)
def test_boto3_in_another_region_is_refused(live_server):
    UserFactory(username="admin", is_superuser=True)
    mm = boto3_client(live_server, signed.new_key("admin"), region="eu-west-1")

    with pytest.raises(ClientError) as caught:
        mm.list_relays()

    assert caught.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


@pytest.mark.django_db(transaction=True)
def test_boto3_with_a_non_staff_users_key_is_refused(live_server):
    UserFactory(username="outsider", is_superuser=True, is_staff=False)
    mm = boto3_client(live_server, signed.new_key("outsider"))

    with pytest.raises(ClientError) as caught:
        mm.create_relay(
            RelayName="not-made",
            ServerName="smtp.example.com",
            ServerPort=587,
            Authentication={"NoAuthentication": {}},
        )

    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert not RelayServer.objects.exists()
