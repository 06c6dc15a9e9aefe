from django.contrib import admin
from django.urls import include, path, re_path
from django.views import defaults

from relayapi import health, home
from relays.greenarrow.envelope import INTERNAL_ERROR, error_response


def greenarrow_not_found(request):
    # Also with DEBUG on: an API client gets the envelope, never Django's HTML page.
    return error_response(404, "not_found", [f"no such resource: {request.path}"])


def handler500(request):
    if request.path.startswith("/ga/"):
        return error_response(500, "internal_error", [INTERNAL_ERROR])
    return defaults.server_error(request)


urlpatterns = [
    # First: the liveness probe is the cheapest request there is, and resolves in one match.
    path("healthz", health.healthz),
    path("readyz", health.readyz),
    path("ga/api/v3/eng/", include("relays.greenarrow.urls")),
    re_path(r"^ga/", greenarrow_not_found),
    path("admin/", admin.site.urls),
    # Mail Manager (awsJson1_0): every operation is a POST to the root, named by X-Amz-Target;
    # a browser's GET gets a page naming the product instead.
    path("", home.root),
]
