"""The Mail Manager endpoint (awsJson1_0): `POST /` dispatched on `X-Amz-Target`.

This module only verifies the signature, checks the caller's permission, dispatches to an
operation (`relays.py`, `tags.py`) and renders errors; every error leaves through `_respond` in
the Smithy shape `{"__type", "Message"}` with its modelled status.
"""

import json
import logging
import uuid

from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from relays import errors
from relays.mailmanager import relays, sigv4, tags
from relays.mailmanager.shapes import AwsError

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
            raise AwsError(
                "ValidationException", "the request body is larger than 1 MiB", 413
            ) from None
        try:
            key = sigv4.verify(request, raw)
        except sigv4.SignatureError as error:
            raise AwsError(error.code, str(error), 403) from None
        request.user = key.user  # named in the request's log line
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
