"""The Mail Manager endpoint (awsJson1_0): `POST /` dispatched on `X-Amz-Target`.

This module only verifies the signature (counting refusals towards the lockout), checks the
caller's permission, dispatches to an operation (`relays.py`, `tags.py`) and renders errors;
every error leaves through `error_response` in the Smithy shape `{"__type", "Message"}` with its
modelled status, an unforeseen one too (`InternalFailure`, 500), never an HTML page.
"""

import json
import logging
import uuid

from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from relayapi.clients import client_address
from relays import access_keys, audit, crypto, errors, json_bodies, lockout
from relays import validators as v
from relays.mailmanager import relays, sigv4, tags
from relays.mailmanager.shapes import AwsError
from relays.models import LoginFailure

log = logging.getLogger(__name__)
TARGET_PREFIX = "MailManagerSvc."
CONTENT_TYPE = "application/x-amz-json-1.0"

# Operation -> (handler, the model permission it needs)
OPERATIONS = {
    "CreateRelay": (relays.create_relay, "relays.add_relayserver"),
    "GetRelay": (relays.get_relay, "relays.view_relayserver"),
    "ListRelays": (relays.list_relays, "relays.view_relayserver"),
    "UpdateRelay": (relays.update_relay, "relays.change_relayserver"),
    "DeleteRelay": (relays.delete_relay, "relays.delete_relayserver"),
    "TagResource": (tags.tag_resource, "relays.change_relayserver"),
    "UntagResource": (tags.untag_resource, "relays.change_relayserver"),
    "ListTagsForResource": (tags.list_tags_for_resource, "relays.view_relayserver"),
}


def _respond(status, payload, request_id, code=None):
    response = HttpResponse(json.dumps(payload), status=status, content_type=CONTENT_TYPE)
    response["x-amzn-RequestId"] = request_id
    response["Cache-Control"] = "no-store"
    if code:
        response["X-Amzn-Errortype"] = code
    return response


def members(value):
    """The parsed body with every null member of every JSON object removed: in awsJson a null
    member is an absent one. List items stay as they are (a null item is refused). A member
    name that no database could store (NUL, a lone surrogate) is refused: unknown members are
    ignored, and this one would otherwise be dropped unseen. Iterative: the parser's nesting
    depth must not become this function's recursion depth."""
    root = [value]
    pending = [(root, 0)]
    while pending:
        container, key = pending.pop()
        item = container[key]
        if isinstance(item, dict):
            for name in item:
                if not v.is_storable(name):  # repr() escapes NUL and surrogates alike
                    raise AwsError(
                        "ValidationException",
                        f"member name {name!r} must be text without NUL characters or "
                        "unpaired surrogates",
                    )
            item = {name: member for name, member in item.items() if member is not None}
            container[key] = item
            pending.extend((item, k) for k in item)
        elif isinstance(item, list):
            pending.extend((item, i) for i in range(len(item)))
    return root[0]


def _domain_error(error):
    """A write service's refusal as the Mail Manager error boto3 models for it, each problem
    naming its member (`ServerName must ...`), not a GreenArrow attribute path."""
    message = "; ".join(error.sentences(relays.MEMBERS))
    if isinstance(error, errors.NameTaken | errors.InUse):
        return AwsError("ConflictException", message, 409)
    if isinstance(error, errors.QuotaExceeded):
        return AwsError("ServiceQuotaExceededException", message, 402)
    if isinstance(error, errors.NotFound):
        return AwsError("ResourceNotFoundException", message, 404)
    return AwsError("ValidationException", message)


class Throttled(AwsError):
    """Too many refused signatures from this address: ThrottlingException (HTTP 429, as the
    botocore model has it) with Retry-After. boto3 retries throttling errors by itself; a retry
    refused here is not counted, so it only waits."""

    def __init__(self, wait):
        super().__init__(
            "ThrottlingException",
            f"too many failed logins from this address; try again in {wait} seconds",
            429,
        )
        self.retry_after = wait


def error_response(request, error):
    """An AwsError as the Smithy error boto3 parses; also relayapi's cross-site guard's answer."""
    request_id = getattr(request, "request_id", None) or str(uuid.uuid4())
    payload = {"__type": f"com.amazonaws.mailmanager#{error.code}", "Message": str(error)}
    response = _respond(error.status, payload, request_id, error.code)
    if getattr(error, "retry_after", None):
        response["Retry-After"] = str(error.retry_after)
    return response


def _authenticate(request, raw):
    """The AccessKey that signed the request. Past the lockout limit it is refused before the
    key is even looked up; every refused key or signature counts towards that limit."""
    try:
        credential = sigv4.parse(request)
    except sigv4.SignatureError as error:
        # Malformed, unscoped or stale: no secret was tried, nothing to count.
        raise AwsError(error.code, str(error), 403) from None
    address = client_address(request)
    wait = lockout.retry_after(credential.access_key_id, address)
    if wait:
        raise Throttled(wait)
    try:
        return sigv4.verify(request, raw, credential)
    except crypto.UndecryptableSecret as error:
        # The server cannot read the key's secret, so it cannot check the signature: refused
        # as an unusable key (boto3 does not retry it), not counted against the caller.
        log.error("%s", error)
        raise AwsError(
            "UnrecognizedClientException", f"the signature cannot be checked: {error}", 403
        ) from None
    except sigv4.SignatureError as error:
        lockout.record_failure(credential.access_key_id, address, LoginFailure.Door.MAILMANAGER)
        raise AwsError(error.code, str(error), 403) from None


@csrf_exempt
def endpoint(request):
    request_id = getattr(request, "request_id", None) or str(uuid.uuid4())
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
            # The model's answer to a malformed call is ValidationException (400); a 413 is
            # no error boto3 knows.
            raise AwsError("ValidationException", "the request body is larger than 1 MiB") from None
        key = _authenticate(request, raw)
        access_keys.mark_used(key)
        request.user = key.user  # named in the request's log line
        if not (key.user.is_active and key.user.has_perm(permission)):
            raise AwsError(
                "AccessDeniedException", f"{key.user.username} may not call {target}", 403
            )
        try:
            body = json_bodies.loads(raw.decode("utf-8")) if raw.strip() else {}
        except (UnicodeDecodeError, ValueError, RecursionError):
            raise AwsError("SerializationException", "the request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise AwsError("SerializationException", "the request body must be a JSON object")
        body = members(body)
        try:
            with audit.acting("mailmanager", request, key.user, key):
                return _respond(200, handler(body, key.user), request_id)
        except errors.RelayError as error:
            raise _domain_error(error) from None
    except AwsError as error:
        return error_response(request, error)
    except crypto.UndecryptableSecret as error:
        # A record stored under another key: Secrets Manager's own answer to a secret its key
        # cannot open (DecryptionFailure, 400), which boto3 does not retry as it does a 500.
        log.error("%s", error)
        return error_response(request, AwsError("DecryptionFailure", str(error)))
    except (OperationalError, InterfaceError):
        log.exception("database unavailable")
        payload = {
            "__type": "com.amazonaws.mailmanager#ServiceUnavailable",
            "Message": "try again later",
        }
        return _respond(503, payload, request_id, "ServiceUnavailable")
    except Exception:
        # A bug, not a refusal: logged with its traceback, answered in the protocol's shape.
        log.exception("unexpected error in %s", request.META.get("HTTP_X_AMZ_TARGET", ""))
        payload = {
            "__type": "com.amazonaws.mailmanager#InternalFailure",
            "Message": "the request could not be processed",
        }
        return _respond(500, payload, request_id, "InternalFailure")
