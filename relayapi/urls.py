from django.contrib import admin
from django.urls import include, path, re_path
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from relayapi import health, home
from relays.greenarrow.envelope import INTERNAL_ERROR, error_response


@csrf_exempt
def greenarrow_not_found(request):
    # Also with DEBUG on: an API client gets the envelope, never Django's HTML page. Exempt from
    # the CSRF token like the API itself (it changes nothing): a PUT to a path that is no record
    # (`/relay_servers/abc`) is a 404 envelope, not Django's HTML "CSRF verification failed".
    return error_response(404, "not_found", [f"no such resource: {request.path}"])


greenarrow_schema = SpectacularAPIView.as_view(
    renderer_classes=[
        OpenApiJsonRenderer2,
        OpenApiJsonRenderer,
        OpenApiYamlRenderer,
        OpenApiYamlRenderer2,
    ]
)


def handler500(request):
    if request.path.startswith("/ga/"):
        return error_response(500, "internal_error", [INTERNAL_ERROR])
    return defaults.server_error(request)


urlpatterns = [
    # First: the liveness probe is the cheapest request there is, and resolves in one match.
    path("healthz", health.healthz),
    path("readyz", health.readyz),
    path("ga/api/v3/eng/", include("relays.greenarrow.urls")),
    # The API's OpenAPI schema (JSON; `?format=yaml` or an Accept header for YAML) and its docs
    # page (Swagger UI, from the sidecar's static files): no login needed to read them.
    path("ga/api/v3/schema", greenarrow_schema, name="greenarrow-schema"),
    path(
        "ga/api/v3/docs",
        SpectacularSwaggerView.as_view(url_name="greenarrow-schema"),
        name="greenarrow-docs",
    ),
    re_path(r"^ga/", greenarrow_not_found),
    path("admin/", admin.site.urls),
    # Mail Manager (awsJson1_0): every operation is a POST to the root, named by X-Amz-Target;
    # a browser's GET gets a page naming the product instead.
    path("", home.root),
]
