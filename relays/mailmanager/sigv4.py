"""AWS Signature Version 4 verification for the Mail Manager facade (signing name `ses`).

The server rebuilds the client's canonical request from what it received (method, path, query,
the headers the client says it signed, the raw body), signs it with the secret of the access key
named in the credential scope, and compares. The `host` header is the one the client signed:
with USE_X_FORWARDED_HOST on, a reverse proxy's X-Forwarded-Host stands for it.
"""

import hashlib
import hmac
import re
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

from django.conf import settings
from django.utils import timezone

from relays.mailmanager import keys
from relays.models import AccessKey

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "ses"
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)


class SignatureError(Exception):
    """A refused signature; `code` is the AWS error name (all are answered with HTTP 403)."""

    def __init__(self, code, message):
        self.code = code
        super().__init__(message)


def _incomplete(message):
    return SignatureError("IncompleteSignatureException", message)


def _header(request, name):
    """A request header's value as the client sent it (host: as the client signed it)."""
    if name == "host":
        if settings.USE_X_FORWARDED_HOST and "HTTP_X_FORWARDED_HOST" in request.META:
            return request.META["HTTP_X_FORWARDED_HOST"]
        return request.META.get("HTTP_HOST", "")
    if name == "content-type":
        return request.META.get("CONTENT_TYPE", "")
    if name == "content-length":
        return request.META.get("CONTENT_LENGTH", "")
    return request.META.get("HTTP_" + name.upper().replace("-", "_"))


def _canonical_query(query_string):
    pairs = parse_qsl(query_string, keep_blank_values=True)
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}" for k, v in sorted(pairs))


def canonical_request(request, signed_headers, body):
    lines = []
    for name in signed_headers:
        value = _header(request, name)
        if value is None:
            raise _incomplete(f"signed header {name} is missing from the request")
        lines.append(f"{name}:{' '.join(value.split())}\n")
    return "\n".join(
        [
            request.method,
            quote(request.path, safe="/-_.~"),
            _canonical_query(request.META.get("QUERY_STRING", "")),
            "".join(lines),
            ";".join(signed_headers),
            hashlib.sha256(body).hexdigest(),
        ]
    )


def _hmac(key, text):
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signature(secret, amz_date, scope, canonical):
    date, region, service, terminator = scope.split("/")
    string_to_sign = "\n".join(
        [ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = _hmac(("AWS4" + secret).encode(), date)
    for part in (region, service, terminator):
        key = _hmac(key, part)
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


def verify(request, body):
    """The AccessKey that signed `request` (with raw `body` bytes), or SignatureError."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        raise _incomplete("the request is not signed: Authorization header missing")
    match = _AUTHORIZATION.fullmatch(header.strip())
    if not match:
        raise _incomplete("the Authorization header is not an AWS4-HMAC-SHA256 signature")
    parts = match["credential"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise _incomplete("Credential must be AccessKeyId/date/region/service/aws4_request")
    key_id, date, region, service, _ = parts
    if service != SERVICE:
        raise _incomplete(
            f"Credential should be scoped to the service {SERVICE!r}, not {service!r}"
        )
    signed_headers = match["signed"].split(";")
    if "host" not in signed_headers:
        raise _incomplete("SignedHeaders must include host")
    amz_date = request.META.get("HTTP_X_AMZ_DATE", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise _incomplete("X-Amz-Date is missing or not in the form 20261122T090451Z") from None
    if not amz_date.startswith(date):
        raise SignatureError(
            "InvalidSignatureException", "the Credential date does not match X-Amz-Date"
        )

    access_key = (
        AccessKey.objects.select_related("user")
        .filter(access_key_id=key_id, is_active=True)
        .first()
    )
    if access_key is None:
        raise SignatureError(
            "UnrecognizedClientException", "the security token included in the request is invalid"
        )
    if abs((timezone.now() - signed_at).total_seconds()) > settings.SIGV4_MAX_SKEW_SECONDS:
        raise SignatureError(
            "InvalidSignatureException",
            "signature expired: X-Amz-Date is more than 15 minutes from the server's time",
        )
    expected = signature(
        keys.decrypt(access_key.secret_encrypted),
        amz_date,
        "/".join([date, region, service, "aws4_request"]),
        canonical_request(request, signed_headers, body),
    )
    if not hmac.compare_digest(expected, match["signature"]):
        raise SignatureError(
            "InvalidSignatureException",
            "the request signature we calculated does not match the signature you provided",
        )
    return access_key
