"""Mail Manager calls signed by botocore's own SigV4 signer, sent through Django's test client,
so a test can choose the client address, the headers signed and what is changed after signing."""

import io
import json
from datetime import UTC, datetime
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from django.core.management import call_command
from django.test import Client

CONTENT_TYPE = "application/x-amz-json-1.0"
HOST = "testserver"


def new_key(username):
    """A new access key of `username`: {"AccessKeyId", "SecretAccessKey"}."""
    out = io.StringIO()
    call_command("create_access_key", username, stdout=out)
    return json.loads(out.getvalue())


def sign(key, operation, params=None, *, sign_headers=True, region="us-east-1", at=None):
    """(headers, body) of a call as botocore signs it. With sign_headers=False the
    Content-Type and X-Amz-Target headers are added only after signing (signed: host and
    x-amz-date only)."""
    body = json.dumps(params or {}).encode()
    call_headers = {"Content-Type": CONTENT_TYPE, "X-Amz-Target": f"MailManagerSvc.{operation}"}
    aws = AWSRequest(
        method="POST",
        url=f"http://{HOST}/",
        data=body,
        headers=call_headers if sign_headers else {},
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=at or datetime.now(UTC)):
        SigV4Auth(Credentials(key["AccessKeyId"], key["SecretAccessKey"]), "ses", region).add_auth(
            aws
        )
    headers = {
        **call_headers,
        **{name: aws.headers[name] for name in ("X-Amz-Date", "Authorization")},
    }
    return headers, body


def send(headers, body, *, remote_addr="127.0.0.1", **extra):
    """POST / with exactly these headers (a header name as sent, e.g. X-Amz-Target)."""
    meta = {
        "HTTP_" + name.upper().replace("-", "_"): value
        for name, value in headers.items()
        if name != "Content-Type"
    }
    return Client().generic(
        "POST",
        "/",
        body,
        content_type=headers.get("Content-Type", ""),
        HTTP_HOST=HOST,
        REMOTE_ADDR=remote_addr,
        **meta,
        **extra,
    )


def call(key, operation, params=None, *, remote_addr="127.0.0.1", **sign_options):
    """Sign and send one call; the Django test response."""
    headers, body = sign(key, operation, params, **sign_options)
    return send(headers, body, remote_addr=remote_addr)
