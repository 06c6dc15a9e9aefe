"""One rule for text, in one place (relays/validators.py), at every door: no NUL or unpaired
surrogate anywhere (a 400, never a 500, on both databases), and no control or bidirectional
characters in text that reaches an SMTP command or a configuration file."""

import json

import pytest

from tests import signed
from tests.conftest import error, relay_payload
from tests.factories import RelayServerFactory, UserFactory

CONTROL = (
    "must not contain control characters (such as CR, LF or NUL) or bidirectional text controls"
)
UNSTORABLE = "must be text without NUL characters or unpaired surrogates"

# (label, value, message for credentials)
BAD_TEXT = [
    ("CR LF", "user\r\nRSET", CONTROL),
    ("LF", "a\nb", CONTROL),
    ("NUL", "a\x00b", UNSTORABLE),
    ("lone surrogate", "a\ud800b", UNSTORABLE),
    ("DEL", "a\x7fb", CONTROL),
    ("C1 NEL", "a\x85b", CONTROL),
    ("bidi override", "pass\u202eword", CONTROL),
    ("bidi isolate", "pass\u2066word", CONTROL),
]


@pytest.mark.parametrize(("label", "value", "message"), BAD_TEXT)
@pytest.mark.parametrize("field", ["username", "password"])
def test_credentials_refuse_control_and_bidi_characters(
    admin, unchanged, field, label, value, message
):
    payload = relay_payload()
    payload["relay_server"]["destination"][field] = value

    with unchanged():
        response = admin.post("/relay_servers", payload)

    assert response.json() == error("validation_failed", f"destination.{field} {message}")


@pytest.mark.parametrize("value", ["pässwörd", "p@ss w0rd!#%", "ユーザー"])
def test_credentials_accept_ordinary_unicode_and_spaces(admin, value):
    payload = relay_payload()
    payload["relay_server"]["destination"]["password"] = value

    assert admin.post("/relay_servers", payload).status_code == 200


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "relay\r\n1"), ("name", "relay\u202e1"), ("name", "\ud800")],
)
def test_names_refuse_control_characters_and_surrogates(admin, unchanged, field, value):
    with unchanged():
        response = admin.post("/relay_servers", relay_payload(**{field: value}))

    assert response.status_code == 400
    assert response.json()["error_code"] == "validation_failed"


@pytest.mark.parametrize(
    "hostname", ["smtp\r\n.example.com", "smtp\x00.example.com", "smtp\u202e.com"]
)
def test_hostnames_refuse_control_characters(admin, unchanged, hostname):
    payload = relay_payload()
    payload["relay_server"]["destination"]["hostname"] = hostname

    with unchanged():
        response = admin.post("/relay_servers", payload)

    assert response.status_code == 400


@pytest.mark.parametrize("value", ["\ud800", "a\x00"])
@pytest.mark.parametrize(
    ("reference", "member"),
    [
        ({}, "name"),
        # beside an id, `name` and `type` are not used, but they are checked, not dropped unseen
        ({"id": 1, "name": "relay"}, "name"),
        ({"id": 1, "name": "relay"}, "type"),
    ],
)
def test_reference_hashes_refuse_unstorable_text(admin, unchanged, reference, member, value):
    relay = RelayServerFactory()

    with unchanged():
        response = admin.put(
            f"/relay_servers/{relay.id}",
            {"relay_server": {"redirect": {**reference, member: value}}},
        )

    assert response.json() == error("validation_failed", f"redirect {member} {UNSTORABLE}")


@pytest.mark.parametrize(
    ("path", "query", "message"),
    [
        ("/ip_addresses", {"name": "a\x00"}, "name must be text without NUL characters"),
        ("/ip_addresses", {"hostname": "\x00"}, "hostname must be text without NUL characters"),
        ("/ip_addresses", {"ip": "1.2.3.4\x00"}, "ip must be text without NUL characters"),
        ("/relay_servers", {"page": "\x00"}, "page must be text without NUL characters"),
        (
            "/relay_servers",
            {"page_token": "abc\x00"},
            "page_token must be text without NUL characters",
        ),
    ],
)
def test_query_parameters_refuse_nul(admin, path, query, message):
    response = admin.get(path, **query)

    assert response.status_code == 400
    assert response.json() == error("invalid_request", message)


def test_a_default_virtual_mta_name_refuses_surrogates(admin, unchanged):
    with unchanged():
        response = admin.put("/virtual_mtas/default", {"virtual_mta": {"name": "\udfff"}})

    assert response.json() == error("validation_failed", f"virtual_mta name {UNSTORABLE}")


# --- Mail Manager, through the endpoint with a botocore-signed request ---


@pytest.fixture
def signed_call(db):
    UserFactory(username="boto", is_superuser=True)
    key = signed.new_key("boto")
    return lambda operation, body: signed.call(key, operation, body)


RELAY = {
    "RelayName": "r1",
    "ServerName": "smtp.example.com",
    "ServerPort": 587,
    "Authentication": {"NoAuthentication": {}},
}


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("CreateRelay", {**RELAY, "ClientToken": "tok\x00en"}),
        ("CreateRelay", {**RELAY, "ClientToken": "tok\ud800en"}),
        ("CreateRelay", {**RELAY, "RelayName": "r\u202e1"}),
        ("ListRelays", {"NextToken": "a\x00b"}),
        ("ListRelays", {"NextToken": "\ud800"}),
        ("ListRelays", {"NextToken": 12}),
        ("GetRelay", {"RelayId": "rl-\x00"}),
        # Unknown members are ignored, but one whose name holds NUL or a lone surrogate is
        # refused, not dropped unseen.
        ("CreateRelay", {**RELAY, "Client\x00Token": "t"}),
        ("UpdateRelay", {"RelayId": "rl-1", "Relay\ud800Name": "r2"}),
        ("CreateRelay", {**RELAY, "Authentication": {"NoAuthentication": {"\x00": 1}}}),
        (
            "ListTagsForResource",
            {"ResourceArn": "arn:aws:ses:us-east-1:000000000000:mailmanager-smtp-relay/\x00"},
        ),
        (
            "ListTagsForResource",
            {"ResourceArn": "arn:aws:ses:us-east-1:000000000000:mailmanager-smtp-relay/\ud800"},
        ),
        (
            "CreateRelay",
            {
                **RELAY,
                "Authentication": {
                    # twelve Arabic-Indic digits: Python's \d, not the model's [0-9]
                    "SecretArn": "arn:aws:secretsmanager:us-east-1:" + "\u0661" * 12 + ":secret:x"
                },
            },
        ),
    ],
)
def test_mail_manager_refuses_unstorable_text_with_a_validation_exception(
    signed_call, unchanged, operation, body
):
    with unchanged():
        response = signed_call(operation, body)

    assert response.status_code == 400, response.content
    assert json.loads(response.content)["__type"] == "com.amazonaws.mailmanager#ValidationException"


@pytest.mark.parametrize(("username", "password"), [("ad\x00min", "pw"), ("admin", "p\x00w")])
def test_nul_in_basic_credentials_is_a_plain_401(admin, username, password):
    from tests.conftest import GreenArrowClient

    response = GreenArrowClient(username, password=password).get("/relay_servers")

    assert response.status_code == 401
    assert response.json()["error_code"] == "unauthorized"
