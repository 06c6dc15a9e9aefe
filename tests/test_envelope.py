"""Every response of the GreenArrow API is the envelope, errors and 404s included."""

import pytest
from django.db import OperationalError

from relays import services
from tests.conftest import error, relay_payload


def test_unknown_paths_under_the_api_are_not_found_in_the_envelope(admin):
    response = admin.get("/no_such_thing")

    assert response.status_code == 404
    assert response.json() == error("not_found", "no such resource: /ga/api/v3/eng/no_such_thing")


def test_a_method_the_resource_does_not_have_is_405(admin):
    response = admin.call("PATCH", "/relay_servers", {})

    assert response.status_code == 405
    assert response.json() == error("invalid_request", 'Method "PATCH" not allowed.')


def test_json_is_answered_whatever_the_accept_header(admin):
    response = admin.client.get("/ga/api/v3/eng/relay_servers", HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


def test_an_unexpected_error_is_500_without_a_traceback(admin, monkeypatch):
    def explode(data):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(services, "_save", lambda *a: explode(a))

    response = admin.post("/relay_servers", relay_payload())

    assert response.status_code == 500
    assert response.json() == error(
        "internal_error", "an internal error occurred; it has been logged"
    )
    assert b"secret internals" not in response.content


def test_an_unavailable_database_is_503(admin, monkeypatch):
    def down(*args):
        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "_save", down)

    response = admin.post("/relay_servers", relay_payload())

    assert response.status_code == 503
    assert response.json() == error(
        "internal_error", "the database is unavailable; try again later"
    )


@pytest.mark.parametrize("method", ["post", "put"])
def test_success_envelope_has_null_error_fields(admin, method):
    created = admin.post("/relay_servers", relay_payload()).json()

    assert (created["success"], created["error_code"], created["error_messages"]) == (
        True,
        None,
        None,
    )
