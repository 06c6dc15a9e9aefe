"""Cross-site writes to the APIs are refused.

Both APIs authenticate each request by itself (HTTP Basic, SigV4) and so do without Django's CSRF
token, which scripts cannot send. But a browser that knows Basic credentials for this server
sends them with any request a page on another site makes it send, and a `text/plain` POST needs
no CORS preflight: without this guard such a page could create or delete relays as the
browser's user. Browsers say where a write comes from: `Origin` on every POST, PUT, PATCH and
DELETE, and `Sec-Fetch-Site`. A write whose Origin is present and not this server's own (the
scheme and host it is served on, or one of CSRF_TRUSTED_ORIGINS), or whose Sec-Fetch-Site is
`cross-site`, is refused with 403 in the API's own error shape, before any credential is looked
at (so a foreign page cannot spend its visitors' login attempts either). Clients that send
neither header (curl, scripts, boto3, the AWS CLI) are not affected.

The admin is not handled here: Django's CSRF protection (a token, and the same Origin check)
guards it, as it guards every view that is not exempt from it.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.utils.http import is_same_domain

from relays.greenarrow.envelope import error_response as greenarrow_error
from relays.mailmanager.shapes import AwsError
from relays.mailmanager.views import error_response as mailmanager_error

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REFUSED = "cross-site writes are refused: the request came from a page on another site"


def origin_allowed(request, origin):
    """Whether a browser's Origin is this server or a trusted origin (the same rule as Django's
    CSRF check, wildcards such as https://*.example.com included)."""
    origin = origin.lower()
    if origin == f"{request.scheme}://{request.get_host()}".lower():
        return True
    parts = urlsplit(origin)
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        trusted = trusted.lower()
        if origin == trusted:
            return True
        if "*" in trusted:
            scheme, _, pattern = trusted.partition("://")
            if parts.scheme == scheme and is_same_domain(parts.netloc, pattern.lstrip("*")):
                return True
    return False


def is_cross_site(request):
    if request.method not in WRITES:
        return False
    if request.META.get("HTTP_SEC_FETCH_SITE", "").lower() == "cross-site":
        return True
    origin = request.META.get("HTTP_ORIGIN")
    return origin is not None and not origin_allowed(request, origin)


class CrossSiteWriteMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        greenarrow, mailmanager = request.path.startswith("/ga/"), request.path == "/"
        if (greenarrow or mailmanager) and is_cross_site(request):
            if greenarrow:
                return greenarrow_error(403, "forbidden", [REFUSED])
            return mailmanager_error(request, AwsError("AccessDeniedException", REFUSED, 403))
        return self.get_response(request)
