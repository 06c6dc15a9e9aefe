"""Every request gets an id and leaves one JSON log line.

First in MIDDLEWARE, so the line covers everything after it (static files, the admin, both APIs,
error pages) and the duration is the app's whole share of the request.
"""

import re
import time
import uuid

import structlog
from django.conf import settings
from django.utils.functional import SimpleLazyObject, empty

from relayapi.clients import client_address, from_trusted_proxy

log = structlog.get_logger("relayapi.request")

# What a proxy's id may look like (nginx's $request_id is 32 hex digits); anything else is
# replaced rather than logged.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id_for(request):
    """The proxy's X-Request-Id when the deployment trusts its proxy's ids, the request comes
    from that proxy (RELAYAPI_TRUSTED_PROXIES) and the value is sane; otherwise a fresh one.
    Anyone else who reaches the app server directly gets an id of the app's making."""
    if settings.RELAYAPI_TRUST_REQUEST_ID and from_trusted_proxy(request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        if REQUEST_ID.fullmatch(incoming):
            return incoming
    return uuid.uuid4().hex


def username_of(request):
    """Who the request was authenticated as, or None.

    DRF and the Mail Manager endpoint put their user on the request; the admin's session user is
    a lazy object that is only read here when the view has already loaded it, so logging never
    costs a session query.
    """
    user = getattr(request, "user", None)
    if user is None or (isinstance(user, SimpleLazyObject) and user._wrapped is empty):
        return None
    return user.get_username() if user.is_authenticated else None


class RequestLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.perf_counter()
        request.request_id = request_id_for(request)
        # The client as the deployment sees it (behind a trusted proxy: its X-Forwarded-For);
        # the audit log records the same address.
        request.client_address = client_address(request)
        # Bound for the length of the request: every other log line it causes carries the id.
        with structlog.contextvars.bound_contextvars(request_id=request.request_id):
            response = self.get_response(request)
            response["X-Request-Id"] = request.request_id
            log.info(
                "request",
                method=request.method,
                path=request.path,
                status=response.status_code,
                duration_ms=round((time.perf_counter() - started) * 1000, 2),
                user=username_of(request),
                remote_addr=request.client_address,
            )
        return response
