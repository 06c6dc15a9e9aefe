"""When the database does not answer in time (a statement timeout, PostgreSQL down): the pages
that are not an API (the admin, the home page) answer 503 with a page saying so, as the two
APIs answer 503 in their own shapes, never a 500 "server error" for what is no bug. The
request's transaction is rolled back, so nothing was changed."""

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.utils.html import escape

log = logging.getLogger(__name__)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>RelayAPI: try again</title></head>
<body><h1>The database did not answer in time</h1>
<p>Nothing was changed. Try again in a moment; a search or filter over many records can be
narrowed (fewer words, a filter).</p>
<p>Request id: <code>{request_id}</code></p></body></html>
"""


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        log.exception("database unavailable or too slow", exc_info=exception)
        response = HttpResponse(
            PAGE.format(request_id=escape(getattr(request, "request_id", ""))), status=503
        )
        response["Retry-After"] = "5"
        return response
