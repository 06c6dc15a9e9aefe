"""The GreenArrow v3 envelope: `{success, data, error_code, error_messages}` on every response.

Success bodies are wrapped by the renderer; every error, whatever raised it, is turned into the
envelope by `exception_handler` (DRF views) or `error_response` (Django's 404/500 handlers), so
there is exactly one place that decides an error's status and code.
"""

import logging

from django.db import InterfaceError, OperationalError
from django.http import Http404, JsonResponse
from django.utils.cache import patch_cache_control
from rest_framework import exceptions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from relays import crypto, errors

log = logging.getLogger(__name__)
INTERNAL_ERROR = "an internal error occurred; it has been logged"


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "the request body is larger than 1 MiB"


def envelope(data=None, code=None, messages=None):
    return {"success": code is None, "data": data, "error_code": code, "error_messages": messages}


def _detail_messages(detail):
    if isinstance(detail, list):
        return [str(d) for d in detail]
    if isinstance(detail, dict):
        return [f"{k} {m}" for k, v in detail.items() for m in _detail_messages(v)]
    return [str(detail)]


def classify(exc):
    """(HTTP status, error_code, messages) for any exception raised while serving a request."""
    match exc:
        case errors.InvalidRequest():
            return 400, "invalid_request", exc.messages
        case errors.NotFound():
            return 404, "not_found", exc.messages
        case errors.InUse():
            return 409, "validation_failed", exc.messages
        case errors.Stale():
            return 412, "validation_failed", exc.messages
        case errors.ValidationFailed():
            return 400, "validation_failed", exc.messages
        case Http404() | exceptions.NotFound():
            return 404, "not_found", ["no such resource"]
        case exceptions.NotAuthenticated() | exceptions.AuthenticationFailed():
            return 401, "unauthorized", _detail_messages(exc.detail)
        case exceptions.PermissionDenied():
            return 403, "forbidden", _detail_messages(exc.detail)
        case exceptions.MethodNotAllowed():
            return 405, "invalid_request", _detail_messages(exc.detail)
        case exceptions.APIException():
            return exc.status_code, "invalid_request", _detail_messages(exc.detail)
        case crypto.UndecryptableSecret():
            # The server's keys, not the request: the message names the fix, never a key.
            log.error("%s", exc)
            return 503, "internal_error", [str(exc)]
        case OperationalError() | InterfaceError():
            log.exception("database unavailable")
            return 503, "internal_error", ["the database is unavailable; try again later"]
    log.exception("unexpected error", exc_info=exc)
    return 500, "internal_error", [INTERNAL_ERROR]


def exception_handler(exc, context):
    status, code, messages = classify(exc)
    response = Response(envelope(code=code, messages=messages), status=status)
    if status == 401:
        response["WWW-Authenticate"] = getattr(exc, "auth_header", None) or 'Basic realm="RelayAPI"'
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        response["Retry-After"] = str(exc.wait)
    return response


def error_response(status, code, messages):
    """The envelope outside DRF (Django's 404 and 500 handlers)."""
    response = JsonResponse(envelope(code=code, messages=messages), status=status)
    patch_cache_control(response, no_store=True)
    return response


class EnvelopeRenderer(JSONRenderer):
    """Wraps a view's payload as a success envelope; error envelopes pass through unchanged."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None and not response.exception:
            data = envelope(data=data)
        return super().render(data, accepted_media_type, renderer_context)


class JsonOnly(BaseContentNegotiation):
    """The API speaks JSON whatever the client's Accept header says (no 406)."""

    def select_parser(self, request, parsers):
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type
