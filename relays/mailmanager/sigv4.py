"""AWS Signature Version 4 verification for the Mail Manager facade (signing name `ses`).

The server rebuilds the client's canonical request from what it received (method, path, query,
the headers the client says it signed, the raw body), signs it with the secret of the access key
named in the credential scope, and compares. The `host` header is the one the client signed:
with USE_X_FORWARDED_HOST on, a reverse proxy's X-Forwarded-Host stands for it.

A signature must cover the headers that say where, when and what (REQUIRED_SIGNED_HEADERS, as
botocore always signs them) and be scoped to this server's region and the `ses` service. Within
the clock-skew window (SIGV4_MAX_SKEW_SECONDS) the same signed request is accepted again, as AWS
does: an SDK retry resends it, and ClientToken makes a retried create safe.
"""

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

from django.conf import settings
from django.utils import timezone

from relays.models import AccessKey
from relays.validators import is_storable

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "ses"
# Signed, these bind a signature to this server, this moment, this operation and this body's
# meaning: without x-amz-target a captured GetRelay could be replayed as DeleteRelay.
REQUIRED_SIGNED_HEADERS = ("host", "x-amz-date", "x-amz-target", "content-type")
# re.ASCII: the header's separators are ASCII spaces (a Unicode `\s` would also take NBSP).
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[a-z0-9;-]+),\s*Signature=(?P<signature>[0-9a-f]{64})",
    re.ASCII,
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


@dataclass(frozen=True)
class Credential:
    """What the Authorization header claims: who signed, for which scope, over which headers."""

    access_key_id: str
    date: str
    region: str
    service: str
    signed_headers: tuple
    signature: str
    amz_date: str

    @property
    def scope(self):
        return "/".join([self.date, self.region, self.service, "aws4_request"])


def _window():
    seconds = settings.SIGV4_MAX_SKEW_SECONDS
    return (
        f"{seconds // 60} minutes" if seconds % 60 == 0 and seconds > 60 else f"{seconds} seconds"
    )


def parse(request):
    """The request's Credential, once its form, scope and date are acceptable; SignatureError
    otherwise. Needs no access key: nothing here depends on a secret."""
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
    if region != settings.MAILMANAGER_REGION:
        raise SignatureError(
            "InvalidSignatureException",
            f"Credential should be scoped to the region {settings.MAILMANAGER_REGION!r}, "
            f"not {region!r}",
        )
    signed_headers = tuple(match["signed"].split(";"))
    unsigned = [name for name in REQUIRED_SIGNED_HEADERS if name not in signed_headers]
    if unsigned:
        raise _incomplete(f"SignedHeaders must include {', '.join(unsigned)}")
    amz_date = request.META.get("HTTP_X_AMZ_DATE", "")
    try:
        signed_at = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise _incomplete("X-Amz-Date is missing or not in the form 20261122T090451Z") from None
    if not amz_date.startswith(date):
        raise SignatureError(
            "InvalidSignatureException", "the Credential date does not match X-Amz-Date"
        )
    if abs((timezone.now() - signed_at).total_seconds()) > settings.SIGV4_MAX_SKEW_SECONDS:
        raise SignatureError(
            "InvalidSignatureException",
            f"signature expired: X-Amz-Date is more than {_window()} from the server's time",
        )
    return Credential(key_id, date, region, service, signed_headers, match["signature"], amz_date)


def verify(request, body, credential=None):
    """The AccessKey that signed `request` (with raw `body` bytes), or SignatureError.

    Only an active key of an active staff user signs anything: any other key, like an unknown
    one, is UnrecognizedClientException whatever the signature, so the answer never tells
    whether a secret was right.
    """
    credential = credential or parse(request)
    # A key id PostgreSQL cannot even compare (NUL, a lone surrogate) is simply unknown.
    access_key = (
        None
        if not is_storable(credential.access_key_id)
        else (
            AccessKey.objects.select_related("user")
            .filter(
                access_key_id=credential.access_key_id,
                is_active=True,
                user__is_active=True,
                user__is_staff=True,
            )
            .first()
        )
    )
    if access_key is None:
        raise SignatureError(
            "UnrecognizedClientException", "the security token included in the request is invalid"
        )
    expected = signature(
        access_key.secret,
        credential.amz_date,
        credential.scope,
        canonical_request(request, credential.signed_headers, body),
    )
    if not hmac.compare_digest(expected, credential.signature):
        raise SignatureError(
            "InvalidSignatureException",
            "the request signature we calculated does not match the signature you provided",
        )
    return access_key
