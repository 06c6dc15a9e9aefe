"""The Mail Manager relay API (awsJson1_0): `POST /` dispatched on `X-Amz-Target`.

A thin facade over the same write services as the GreenArrow API: a relay created here is a
GreenArrow relay server (its rules apply too, the stricter wins), and the other way round.
"""

import hashlib
import json
import logging
import re
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError, transaction
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from relays import errors, services
from relays.mailmanager import sigv4
from relays.models import ClientToken, RelayServer, RelayTag
from relays.pagination import make_token, read_token

log = logging.getLogger(__name__)
TARGET_PREFIX = "MailManagerSvc."
CONTENT_TYPE = "application/x-amz-json-1.0"
RELAY_ID = re.compile(r"[a-zA-Z0-9-]{1,100}")
RELAY_NAME = re.compile(r"[a-zA-Z0-9_-]{1,100}")
SERVER_NAME = re.compile(r"[a-zA-Z0-9.-]{1,100}")
TAG_KEY = re.compile(r"[a-zA-Z0-9/_+=.:@-]{1,128}")
TAG_VALUE = re.compile(r"[a-zA-Z0-9/_+=.:@-]{0,256}")
TAGGABLE_ARN = re.compile(
    r"arn:aws(|-cn|-us-gov|-eusc):ses:[a-z0-9-]{1,20}:[0-9]{12}:(mailmanager-|addon-).{1,970}"
)
SECRET_ARN = re.compile(
    r"arn:(aws|aws-cn|aws-us-gov|aws-eusc):secretsmanager:[a-z0-9-]+:\d{12}:secret:[a-zA-Z0-9/_+=,.@-]+"
)


class AwsError(Exception):
    def __init__(self, code, message, status=400):
        self.code, self.status = code, status
        super().__init__(message)


def _invalid(message):
    return AwsError("ValidationException", message)


# --- members ----------------------------------------------------------------------------------


def _string(body, member, pattern, required=True):
    value = body.get(member)
    if value is None:
        if required:
            raise _invalid(f"{member} is required")
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise _invalid(f"{member} must match {pattern.pattern}")
    return value


def _port(body, required=True):
    value = body.get("ServerPort")
    if value is None and not required:
        return None
    if type(value) is not int or not 1 <= value <= 65535:
        raise _invalid("ServerPort must be an integer from 1 to 65535")
    return value


def _own_secret_arn(relay):
    """The ARN that names this server's own stored credentials of `relay`."""
    return (
        f"arn:aws:secretsmanager:{settings.MAILMANAGER_REGION}:{settings.MAILMANAGER_ACCOUNT}"
        f":secret:relayapi/{relay.relay_id}"
    )


def _authentication(body, relay=None, required=True):
    """Model fields for the `Authentication` union, or None when it is absent (update)."""
    value = body.get("Authentication")
    if value is None and not required:
        return None
    if (
        not isinstance(value, dict)
        or len(value) != 1
        or next(iter(value)) not in {"SecretArn", "NoAuthentication"}
    ):
        raise _invalid("Authentication must have exactly one member: SecretArn or NoAuthentication")
    if "NoAuthentication" in value:
        if value["NoAuthentication"] != {}:
            raise _invalid("Authentication.NoAuthentication must be an empty structure")
        return {"destination_username": None, "destination_password": None, "secret_arn": None}
    arn = value["SecretArn"]
    if not isinstance(arn, str) or not SECRET_ARN.fullmatch(arn):
        raise _invalid(f"Authentication.SecretArn must match {SECRET_ARN.pattern}")
    if relay is not None and arn == _own_secret_arn(relay):
        return {}  # written back as read: the stored GreenArrow credentials stay
    return {"destination_username": None, "destination_password": None, "secret_arn": arn}


def _relay(body):
    relay_id = _string(body, "RelayId", RELAY_ID)
    found = RelayServer.objects.filter(relay_id=relay_id).first()
    if found is None:
        raise AwsError("ResourceNotFoundException", f"Relay {relay_id} not found", 404)
    return found


def _arn(relay_id):
    return (
        f"arn:aws:ses:{settings.MAILMANAGER_REGION}:{settings.MAILMANAGER_ACCOUNT}"
        f":mailmanager-smtp-relay/{relay_id}"
    )


def _auth_out(relay):
    if relay.secret_arn:
        return {"SecretArn": relay.secret_arn}
    if relay.destination_username is not None or relay.destination_password is not None:
        return {"SecretArn": _own_secret_arn(relay)}
    return {"NoAuthentication": {}}


# --- operations -------------------------------------------------------------------------------


TOKEN_LIFETIME = timedelta(hours=24)


def create_relay(body, user):
    """CreateRelay; with a ClientToken (boto3 always sends one) a retry returns the first
    result. The token row is inserted first, in the same transaction as the relay: a concurrent
    call with the same token waits on the unique index until this one commits or rolls back."""
    token = body.get("ClientToken")
    if token is not None and (not isinstance(token, str) or not 1 <= len(token) <= 128):
        raise _invalid("ClientToken must be a string of 1 to 128 characters")
    tags = _tags(body.get("Tags", []), "Tags")
    _assert_tag_quota(len(tags))
    request = {k: v for k, v in body.items() if k != "ClientToken"}
    fingerprint = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
    with transaction.atomic():
        record = None
        if token is not None:
            ClientToken.objects.filter(
                user=user, token=token, created_at__lt=timezone.now() - TOKEN_LIFETIME
            ).delete()
            record, created = ClientToken.objects.get_or_create(
                user=user, token=token, defaults={"fingerprint": fingerprint, "relay_id": ""}
            )
            if not created:
                if record.fingerprint != fingerprint:
                    raise AwsError(
                        "ConflictException",
                        "ClientToken was already used with other parameters",
                        409,
                    )
                return {"RelayId": record.relay_id}
        relay = _create_relay(body)
        RelayTag.objects.bulk_create(RelayTag(relay=relay, key=k, value=v) for k, v in tags.items())
        if record is not None:
            record.relay_id = relay.relay_id
            record.save(update_fields=["relay_id"])
        return {"RelayId": relay.relay_id}


def _relay_fields(body, required):
    """RelayName, ServerName and ServerPort as model fields; absent ones (update) are left out."""
    fields = {
        "name": _string(body, "RelayName", RELAY_NAME, required),
        "destination_hostname": _string(body, "ServerName", SERVER_NAME, required),
        "destination_port": _port(body, required),
    }
    return {field: value for field, value in fields.items() if value is not None}


def _create_relay(body):
    data = {
        **_relay_fields(body, required=True),
        **_authentication(body),
        "source_ip": settings.MAILMANAGER_SOURCE_IP,
        "source_hostname": settings.MAILMANAGER_HELO_HOSTNAME,
        "max_concurrent_connections": 0,
        "max_messages_per_hour": 0,
    }
    return services.create_virtual_mta(RelayServer, data)


def get_relay(body, user):
    relay = _relay(body)
    return {
        "RelayId": relay.relay_id,
        "RelayArn": _arn(relay.relay_id),
        "RelayName": relay.name,
        "ServerName": relay.destination_hostname,
        "ServerPort": relay.destination_port,
        "Authentication": _auth_out(relay),
        "CreatedTimestamp": relay.created_at.timestamp(),
        "LastModifiedTimestamp": relay.updated_at.timestamp(),
    }


def list_relays(body, user):
    size = body.get("PageSize", 20)
    if type(size) is not int or not 1 <= size <= 50:
        raise _invalid("PageSize must be an integer from 1 to 50")
    relays = RelayServer.objects.order_by("id")
    if body.get("NextToken") is not None:
        try:
            relays = relays.filter(id__gt=read_token("mailmanager.relays", body["NextToken"]))
        except errors.InvalidRequest:
            raise _invalid("NextToken is not a valid token for ListRelays") from None
    page = list(relays.only("id", "relay_id", "name", "updated_at")[: size + 1])
    answer = {
        "Relays": [
            {
                "RelayId": r.relay_id,
                "RelayName": r.name,
                "LastModifiedTimestamp": r.updated_at.timestamp(),
            }
            for r in page[:size]
        ]
    }
    if len(page) > size:
        answer["NextToken"] = make_token("mailmanager.relays", page[size - 1].id, 0)
    return answer


def update_relay(body, user):
    relay = _relay(body)
    data = _relay_fields(body, required=False)
    data.update(_authentication(body, relay, required=False) or {})
    services.update_virtual_mta(RelayServer, relay.pk, data)
    return {}


def delete_relay(body, user):
    services.delete_virtual_mta(RelayServer, _relay(body).pk)
    return {}


# --- tags -------------------------------------------------------------------------------------


def _tags(value, member):
    """A TagList as {key: value}; every constraint of the model, `aws:` keys reserved."""
    if not isinstance(value, list) or len(value) > 200:
        raise _invalid(f"{member} must be a list of at most 200 tags")
    tags = {}
    for i, tag in enumerate(value):
        if not isinstance(tag, dict) or set(tag) != {"Key", "Value"}:
            raise _invalid(f"{member}[{i}] must have exactly the members Key and Value")
        key, val = tag["Key"], tag["Value"]
        if not isinstance(key, str) or not TAG_KEY.fullmatch(key):
            raise _invalid(f"{member}[{i}].Key must match {TAG_KEY.pattern}")
        if key.lower().startswith("aws:"):
            raise _invalid(f"{member}[{i}].Key must not start with aws: (reserved)")
        if not isinstance(val, str) or not TAG_VALUE.fullmatch(val):
            raise _invalid(f"{member}[{i}].Value must match {TAG_VALUE.pattern}")
        if key in tags:
            raise _invalid(f"{member}[{i}].Key {key} is given twice")
        tags[key] = val
    return tags


def _assert_tag_quota(count):
    if count > settings.MAILMANAGER_MAX_TAGS:
        raise AwsError(
            "ServiceQuotaExceededException",
            f"a resource may have at most {settings.MAILMANAGER_MAX_TAGS} tags",
            402,
        )


def _tagged_relay(body):
    arn = body.get("ResourceArn")
    if not isinstance(arn, str) or not 20 <= len(arn) <= 1011 or not TAGGABLE_ARN.fullmatch(arn):
        raise _invalid("ResourceArn must be a Mail Manager resource ARN")
    prefix = _arn("")
    relay_id = arn.removeprefix(prefix)
    found = (
        RelayServer.objects.filter(relay_id=relay_id).first() if arn.startswith(prefix) else None
    )
    if found is None:
        raise AwsError("ResourceNotFoundException", f"Resource {arn} not found", 404)
    return found


def tag_resource(body, user):
    if "Tags" not in body:
        raise _invalid("Tags is required")
    tags = _tags(body["Tags"], "Tags")
    with transaction.atomic():
        relay = RelayServer.objects.select_for_update().get(pk=_tagged_relay(body).pk)
        existing = set(relay.tags.values_list("key", flat=True))
        _assert_tag_quota(len(existing | set(tags)))
        for key, value in tags.items():  # upsert: an existing key gets the new value
            RelayTag.objects.update_or_create(relay=relay, key=key, defaults={"value": value})
    return {}


def untag_resource(body, user):
    keys = body.get("TagKeys")
    if (
        not isinstance(keys, list)
        or len(keys) > 200
        or not all(isinstance(k, str) and TAG_KEY.fullmatch(k) for k in keys)
    ):
        raise _invalid(f"TagKeys must be a list of at most 200 keys matching {TAG_KEY.pattern}")
    relay = _tagged_relay(body)
    relay.tags.filter(key__in=keys).delete()  # keys that are not there: nothing to do
    return {}


def list_tags_for_resource(body, user):
    relay = _tagged_relay(body)
    return {"Tags": [{"Key": t.key, "Value": t.value} for t in relay.tags.all()]}


# Operation -> (handler, the model permission it needs)
OPERATIONS = {
    "CreateRelay": (create_relay, "relays.add_relayserver"),
    "GetRelay": (get_relay, "relays.view_relayserver"),
    "ListRelays": (list_relays, "relays.view_relayserver"),
    "UpdateRelay": (update_relay, "relays.change_relayserver"),
    "DeleteRelay": (delete_relay, "relays.delete_relayserver"),
    "TagResource": (tag_resource, "relays.change_relayserver"),
    "UntagResource": (untag_resource, "relays.change_relayserver"),
    "ListTagsForResource": (list_tags_for_resource, "relays.view_relayserver"),
}


# --- the endpoint -----------------------------------------------------------------------------


def _respond(status, payload, request_id, code=None):
    response = HttpResponse(json.dumps(payload), status=status, content_type=CONTENT_TYPE)
    response["x-amzn-RequestId"] = request_id
    if code:
        response["X-Amzn-Errortype"] = code
    return response


def _domain_error(error):
    """A write service's refusal as the Mail Manager error boto3 models for it."""
    message = "; ".join(error.messages)
    if isinstance(error, errors.NameTaken | errors.InUse):
        return AwsError("ConflictException", message, 409)
    if isinstance(error, errors.QuotaExceeded):
        return AwsError("ServiceQuotaExceededException", message, 402)
    if isinstance(error, errors.NotFound):
        return AwsError("ResourceNotFoundException", message, 404)
    return AwsError("ValidationException", message)


@csrf_exempt
def endpoint(request):
    request_id = str(uuid.uuid4())
    try:
        target = request.META.get("HTTP_X_AMZ_TARGET", "")
        operation = (
            OPERATIONS.get(target.removeprefix(TARGET_PREFIX))
            if target.startswith(TARGET_PREFIX)
            else None
        )
        if request.method != "POST" or operation is None:
            raise AwsError(
                "UnknownOperationException", f"unknown operation {target or '(no X-Amz-Target)'}"
            )
        handler, permission = operation
        try:
            raw = request.body
        except RequestDataTooBig:
            raise AwsError(
                "ValidationException", "the request body is larger than 1 MiB", 413
            ) from None
        try:
            key = sigv4.verify(request, raw)
        except sigv4.SignatureError as error:
            raise AwsError(error.code, str(error), 403) from None
        if not (key.user.is_active and key.user.has_perm(permission)):
            raise AwsError(
                "AccessDeniedException", f"{key.user.username} may not call {target}", 403
            )
        try:
            body = json.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise AwsError("SerializationException", "the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise AwsError("SerializationException", "the request body must be a JSON object")
        try:
            return _respond(200, handler(body, key.user), request_id)
        except errors.RelayError as error:
            raise _domain_error(error) from None
    except AwsError as error:
        payload = {"__type": f"com.amazonaws.mailmanager#{error.code}", "Message": str(error)}
        return _respond(error.status, payload, request_id, error.code)
    except (OperationalError, InterfaceError):
        log.exception("database unavailable")
        payload = {
            "__type": "com.amazonaws.mailmanager#ServiceUnavailable",
            "Message": "try again later",
        }
        return _respond(503, payload, request_id, "ServiceUnavailable")
