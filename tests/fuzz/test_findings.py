"""What the schemathesis runs of test_greenarrow_schemathesis.py found, each pinned down so it
stays fixed whatever a later run happens to generate."""

import pytest
from django.test import Client

from tests.conftest import GA, error

PATHS = [
    "/relay_servers",
    "/relay_servers/1",
    "/ip_addresses",
    "/routing_rules",
    "/routing_rules/1",
    "/virtual_mtas",
    "/virtual_mtas/1/used_by",
    "/virtual_mtas/default",
]


@pytest.mark.parametrize("path", PATHS)
def test_options_is_a_405_envelope_not_a_500(admin, path):
    """Found by the coverage phase: OPTIONS answered DRF's metadata, built from serializers it
    cannot introspect, with a 500 on /routing_rules and /virtual_mtas/default."""
    response = admin.call("OPTIONS", path)

    assert response.status_code == 405
    assert response.json() == error("invalid_request", 'Method "OPTIONS" not allowed.')
    assert "OPTIONS" not in response["Allow"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
@pytest.mark.parametrize("path", ["/relay_servers/abc", "/relay_servers/-1", "/no_such_thing"])
def test_a_write_to_a_path_that_is_no_record_is_a_404_envelope(db, method, path):
    """Found with a negative path parameter: Django's CSRF check (which a real client meets,
    unlike Django's test client by default) answered its HTML 403 page, because the 404 view
    for unknown paths under /ga/ was not exempt like the API itself."""
    client = Client(enforce_csrf_checks=True)

    response = client.generic(method, f"{GA}{path}", "{}", content_type="application/json")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == error("not_found", f"no such resource: {GA}{path}")
