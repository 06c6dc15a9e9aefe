"""SigV4 verification against requests signed by botocore's own signer (what boto3 sends)."""

import json
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from django.core.management import call_command
from django.test import RequestFactory, override_settings

from relays.mailmanager.sigv4 import SignatureError, verify
from tests.factories import UserFactory

BODY = b'{"RelayName": "n", "ServerName": "smtp.example.com", "ServerPort": 587}'


@pytest.fixture
def key(db, capsys):
    UserFactory(username="boto")
    call_command("create_access_key", "boto")
    return json.loads(capsys.readouterr().out)


def signed(
    key_id, secret, *, host="127.0.0.1:8000", body=BODY, service="ses", at=None, region="us-east-1"
):
    """A request as boto3 signs it, as (Django request, body)."""
    aws = AWSRequest(
        method="POST",
        url=f"http://{host}/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "MailManagerSvc.CreateRelay",
        },
    )
    # botocore stamps the request with its own clock; a test moves that clock to sign "at" a time.
    with mock.patch("botocore.auth.get_current_datetime", return_value=at or datetime.now(UTC)):
        SigV4Auth(Credentials(key_id, secret), service, region).add_auth(aws)
    meta = {
        "HTTP_HOST": host,
        "HTTP_X_AMZ_DATE": aws.headers["X-Amz-Date"],
        "HTTP_X_AMZ_TARGET": aws.headers["X-Amz-Target"],
        "HTTP_AUTHORIZATION": aws.headers["Authorization"],
    }
    request = RequestFactory().generic(
        "POST", "/", body, content_type="application/x-amz-json-1.0", **meta
    )
    return request, body


def refused(request, body):
    with pytest.raises(SignatureError) as caught:
        verify(request, body)
    return caught.value.code


def test_a_request_signed_by_botocore_is_accepted(key):
    access_key = verify(*signed(key["AccessKeyId"], key["SecretAccessKey"]))

    assert access_key.user.username == "boto"


def test_the_secret_is_stored_encrypted(key):
    from django.db import connection

    from relays import crypto
    from relays.models import AccessKey

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret FROM relays_accesskey WHERE access_key_id = %s", [key["AccessKeyId"]]
        )
        (stored,) = cursor.fetchone()
    assert key["SecretAccessKey"] not in stored
    assert crypto.decrypt(stored) == key["SecretAccessKey"]
    assert AccessKey.objects.get(access_key_id=key["AccessKeyId"]).secret == key["SecretAccessKey"]
    assert key["AccessKeyId"].startswith("AKIA") and len(key["AccessKeyId"]) == 20
    assert len(key["SecretAccessKey"]) == 40


def test_create_access_key_refuses_an_unknown_user(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no user named 'ghost'"):
        call_command("create_access_key", "ghost")


def test_a_changed_body_is_an_invalid_signature(key):
    request, _ = signed(key["AccessKeyId"], key["SecretAccessKey"])

    assert refused(request, BODY.replace(b"587", b"588")) == "InvalidSignatureException"


def test_a_wrong_secret_is_an_invalid_signature(key):
    assert refused(*signed(key["AccessKeyId"], "x" * 40)) == "InvalidSignatureException"


def test_an_unknown_or_inactive_key_is_unrecognized(key):
    from relays.models import AccessKey

    assert refused(*signed("AKIAUNKNOWNUNKNOWN00", "x" * 40)) == "UnrecognizedClientException"
    AccessKey.objects.update(is_active=False)
    assert (
        refused(*signed(key["AccessKeyId"], key["SecretAccessKey"]))
        == "UnrecognizedClientException"
    )


@pytest.mark.parametrize("minutes", [16, -16])
def test_a_date_more_than_15_minutes_off_is_refused(key, minutes):
    at = datetime.now(UTC) - timedelta(minutes=minutes)

    assert (
        refused(*signed(key["AccessKeyId"], key["SecretAccessKey"], at=at))
        == "InvalidSignatureException"
    )


def test_a_date_14_minutes_off_is_accepted(key):
    at = datetime.now(UTC) - timedelta(minutes=14)

    assert verify(*signed(key["AccessKeyId"], key["SecretAccessKey"], at=at))


@pytest.mark.parametrize(
    "authorization",
    [
        "",
        "Basic YTpi",
        "AWS4-HMAC-SHA256 Credential=AKIA/20261122/us-east-1/ses, SignedHeaders=host, Signature=00",
    ],
)
def test_a_missing_or_malformed_authorization_is_incomplete(key, authorization):
    request, body = signed(key["AccessKeyId"], key["SecretAccessKey"])
    request.META["HTTP_AUTHORIZATION"] = authorization

    assert refused(request, body) == "IncompleteSignatureException"


def test_a_signature_for_another_service_is_incomplete(key):
    assert (
        refused(*signed(key["AccessKeyId"], key["SecretAccessKey"], service="s3"))
        == "IncompleteSignatureException"
    )


def test_the_host_the_client_signed_must_be_the_host_received(key):
    request, body = signed(key["AccessKeyId"], key["SecretAccessKey"], host="relays.example.com")
    request.META["HTTP_HOST"] = "10.0.0.5:8000"  # what a reverse proxy forwards to

    assert refused(request, body) == "InvalidSignatureException"
    request.META["HTTP_X_FORWARDED_HOST"] = "relays.example.com"
    with override_settings(USE_X_FORWARDED_HOST=True):
        assert verify(request, body)
