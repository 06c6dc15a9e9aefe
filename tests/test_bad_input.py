"""Whatever a client sends, it gets a clear envelope error and the database is untouched."""

import json

import pytest

from tests.conftest import error, relay_payload

BODY_LIMIT = 1024 * 1024


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"relay_server": ', "the request body is not valid UTF-8 JSON"),
        ("", "the request body is not valid UTF-8 JSON"),
        ("[1, 2]", "the request body must be a JSON object"),
        ('"relay_server"', "the request body must be a JSON object"),
        ("null", "the request body must be a JSON object"),
        ("{}", "the request body must have the key relay_server"),
        ('{"relay_server": []}', "relay_server must be a hash"),
        ('{"relay_server": null}', "relay_server must be a hash"),
        ('{"relay_server": {"name": NaN}}', "the request body is not valid UTF-8 JSON"),
        (
            '{"relay_server": {"destination": {"port": Infinity}}}',
            "the request body is not valid UTF-8 JSON",
        ),
        ("1" * 5000, "the request body is not valid UTF-8 JSON"),
        ("[" * 100000, "the request body is not valid UTF-8 JSON"),
    ],
)
def test_malformed_bodies_are_invalid_requests(admin, unchanged, raw, message):
    with unchanged():
        response = admin.post("/relay_servers", raw=raw)

    assert response.status_code == 400
    assert response.json() == error("invalid_request", message)


def test_bytes_that_are_not_utf8_are_an_invalid_request(admin, unchanged):
    with unchanged():
        response = admin.post("/relay_servers", raw=b'{"relay_server": {"name": "\xff"}}')

    assert response.json() == error("invalid_request", "the request body is not valid UTF-8 JSON")


def test_unknown_attributes_are_refused_by_path(admin, unchanged):
    payload = relay_payload(colour="blue")
    payload["relay_server"]["destination"]["prot"] = 25
    payload["relay_server"]["redirect"] = {"name": "x", "kind": "relay"}
    payload["extra"] = 1

    with unchanged():
        response = admin.post("/relay_servers", payload)

    assert response.status_code == 400
    assert response.json() == error(
        "invalid_request",
        "unknown attribute extra",
        "unknown attribute relay_server.destination.prot",
        "unknown attribute relay_server.colour",
        "unknown attribute relay_server.redirect.kind",
    )


def test_read_only_attributes_are_ignored(admin):
    response = admin.post("/relay_servers", relay_payload(id=999))

    assert response.status_code == 200
    assert response.json()["data"]["relay_server"]["id"] != 999


@pytest.mark.parametrize(
    ("path_value", "message"),
    [
        (
            {"name": "nul\x00byte"},
            "name must be text without NUL characters or unpaired surrogates",
        ),
        (
            {"name": "Ünïcödé"},
            "name must contain only ASCII characters 0x20-0x7e, excluding comma, pound sign and at-sign",
        ),
        ({"name": "\ud800"}, "name must be text without NUL characters or unpaired surrogates"),
    ],
)
def test_unstorable_and_non_ascii_names_are_refused(admin, unchanged, path_value, message):
    with unchanged():
        response = admin.post("/relay_servers", relay_payload(**path_value))

    assert response.status_code == 400
    assert response.json() == error("validation_failed", message)


@pytest.mark.parametrize("password", ["nul\x00byte", "\udfff"])
def test_unstorable_passwords_are_refused(admin, unchanged, password):
    payload = relay_payload()
    payload["relay_server"]["destination"]["password"] = password

    with unchanged():
        response = admin.post("/relay_servers", payload)

    assert response.json() == error(
        "validation_failed",
        "destination.password must be text without NUL characters or unpaired surrogates",
    )


def test_a_body_over_one_mebibyte_is_refused_with_413(admin, unchanged):
    payload = relay_payload()
    payload["relay_server"]["destination"]["password"] = "p" * BODY_LIMIT

    with unchanged():
        response = admin.post("/relay_servers", payload)

    assert response.status_code == 413
    assert response.json() == error("invalid_request", "the request body is larger than 1 MiB")


def test_a_body_of_exactly_one_mebibyte_is_read(admin):
    text = json.dumps(relay_payload())
    padded = text[:-1] + " " * (BODY_LIMIT - len(text)) + "}"
    assert len(padded.encode()) == BODY_LIMIT

    response = admin.post("/relay_servers", raw=padded)

    assert response.status_code == 200


@pytest.mark.parametrize("content_type", ["", "text/plain", "application/x-www-form-urlencoded"])
def test_json_is_read_whatever_the_content_type(admin, content_type):
    response = admin.post("/relay_servers", relay_payload(), content_type=content_type)

    assert response.status_code == 200
