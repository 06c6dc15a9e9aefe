"""A page on another site cannot write through a visitor's browser: a write whose Origin is
foreign, or that the browser marks Sec-Fetch-Site: cross-site, is refused with 403 before any
credential is looked at; clients that send neither header (curl, scripts, boto3) are not
affected."""

import json

import pytest

from relays.models import LoginFailure, RelayServer
from tests import signed
from tests.conftest import GA, error, relay_payload
from tests.factories import RelayServerFactory

REFUSED = "cross-site writes are refused: the request came from a page on another site"
FOREIGN = "https://attacker.example"


def raw_post(admin, body, **headers):
    """The request a foreign page's <form enctype="text/plain"> or fetch() would make."""
    return admin.client.generic(
        "POST", f"{GA}/relay_servers", body, content_type="text/plain", **headers
    )


def test_a_text_plain_post_from_a_foreign_origin_is_refused_and_writes_nothing(admin, unchanged):
    with unchanged():
        response = raw_post(admin, json.dumps(relay_payload()), HTTP_ORIGIN=FOREIGN)

    assert response.status_code == 403
    assert response.json() == error("forbidden", REFUSED)


def test_a_write_marked_cross_site_is_refused_without_an_origin(admin, unchanged):
    with unchanged():
        response = raw_post(admin, json.dumps(relay_payload()), HTTP_SEC_FETCH_SITE="cross-site")

    assert response.status_code == 403
    assert response.json() == error("forbidden", REFUSED)


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
def test_updates_and_deletes_from_a_foreign_origin_are_refused(admin, unchanged, method):
    relay = RelayServerFactory(name="kept")

    with unchanged():
        response = admin.call(
            method,
            f"/relay_servers/{relay.id}",
            {"relay_server": {"name": "renamed"}},
            HTTP_ORIGIN=FOREIGN,
        )

    assert response.status_code == 403


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("http://testserver", 200),
        ("http://TestServer", 200),
        ("https://testserver", 403),  # another scheme is another origin
        ("http://testserver:8080", 403),
        ("null", 403),  # a sandboxed frame or a privacy redirect
    ],
)
def test_only_the_servers_own_origin_may_write(admin, origin, expected):
    response = raw_post(
        admin, json.dumps(relay_payload()), HTTP_ORIGIN=origin, HTTP_SEC_FETCH_SITE="same-origin"
    )

    assert response.status_code == expected
    assert RelayServer.objects.filter(name="new-relay-server").exists() == (expected == 200)


def test_a_write_from_a_trusted_origin_is_accepted(admin, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://ops.example.com", "https://*.relays.example"]

    named = raw_post(
        admin, json.dumps(relay_payload(name="a")), HTTP_ORIGIN="https://ops.example.com"
    )
    wildcard = raw_post(
        admin, json.dumps(relay_payload(name="b")), HTTP_ORIGIN="https://eu.relays.example"
    )
    other_scheme = raw_post(
        admin, json.dumps(relay_payload(name="c")), HTTP_ORIGIN="http://ops.example.com"
    )

    assert (named.status_code, wildcard.status_code, other_scheme.status_code) == (200, 200, 403)


def test_a_write_without_either_header_is_accepted(admin):
    response = raw_post(admin, json.dumps(relay_payload()))

    assert response.status_code == 200


def test_a_read_with_a_foreign_origin_is_answered(admin):
    assert admin.client.get(f"{GA}/relay_servers", HTTP_ORIGIN=FOREIGN).status_code == 200


def test_a_refused_cross_site_write_is_not_a_failed_login(admin):
    """A foreign page cannot spend its visitors' login attempts either."""
    admin.client.defaults["HTTP_AUTHORIZATION"] = "Basic c2FtOndyb25n"  # sam:wrong

    for _ in range(12):
        raw_post(admin, "{}", HTTP_ORIGIN=FOREIGN)

    assert not LoginFailure.objects.exists()


# --- Mail Manager ---


@pytest.fixture
def key(db):
    from tests.factories import UserFactory

    UserFactory(username="boto", is_superuser=True)
    return signed.new_key("boto")


CREATE = {
    "RelayName": "made",
    "ServerName": "smtp.example.com",
    "ServerPort": 587,
    "Authentication": {"NoAuthentication": {}},
}


def test_mail_manager_a_signed_create_from_a_foreign_origin_is_access_denied(key, unchanged):
    headers, body = signed.sign(key, "CreateRelay", CREATE)

    with unchanged():
        response = signed.send({**headers, "Origin": FOREIGN}, body)

    assert response.status_code == 403
    assert json.loads(response.content) == {
        "__type": "com.amazonaws.mailmanager#AccessDeniedException",
        "Message": REFUSED,
    }
    assert response["X-Amzn-Errortype"] == "AccessDeniedException"


def test_mail_manager_a_signed_create_without_browser_headers_is_accepted(key):
    response = signed.call(key, "CreateRelay", CREATE)

    assert response.status_code == 200
    assert RelayServer.objects.filter(name="made").exists()
