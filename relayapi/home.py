"""`/`: the Mail Manager endpoint for API clients, a small page naming the product for browsers.

Every Mail Manager call is a POST naming its operation in X-Amz-Target, so a GET or HEAD without
that header can only be a person (or a probe): it gets the page. Everything else goes to the
endpoint untouched, so its answers stay exactly what they were.
"""

from django.template.response import TemplateResponse
from django.views.decorators.csrf import csrf_exempt

from relays.mailmanager.views import endpoint as mailmanager


@csrf_exempt
def root(request):
    if request.method in ("GET", "HEAD") and "HTTP_X_AMZ_TARGET" not in request.META:
        return TemplateResponse(request, "relayapi/home.html")
    return mailmanager(request)
