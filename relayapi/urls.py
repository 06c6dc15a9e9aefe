from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views import defaults

from relays.greenarrow.envelope import INTERNAL_ERROR, error_response
from relays.mailmanager.views import endpoint as mailmanager


def greenarrow_not_found(request):
    # Also with DEBUG on: an API client gets the envelope, never Django's HTML page.
    return error_response(404, "not_found", [f"no such resource: {request.path}"])


def handler500(request):
    if request.path.startswith("/ga/"):
        return error_response(500, "internal_error", [INTERNAL_ERROR])
    return defaults.server_error(request)


def health(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [
    path("ga/api/v3/eng/", include("relays.greenarrow.urls")),
    re_path(r"^ga/", greenarrow_not_found),
    path("admin/", admin.site.urls),
    path("healthz", health),
    # Mail Manager (awsJson1_0): every operation is a POST to the root, named by X-Amz-Target.
    path("", mailmanager),
]
