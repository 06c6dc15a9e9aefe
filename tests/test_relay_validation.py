"""Every vendor rule of a relay server, each with its accepted edge and its refused one."""

import pytest

from relays.models import RelayServer
from tests.conftest import error, relay_payload
from tests.factories import RelayServerFactory


def with_value(path, value):
    """The vendor's create example with the attribute at `path` ("destination.port") set."""
    payload = relay_payload()
    *parents, key = path.split(".")
    target = payload["relay_server"]
    for parent in parents:
        target = target[parent]
    target[key] = value
    return payload


ACCEPTED = [
    ("name", "a"),
    ("name", "x" * 200),
    ("name", "Relay Server ~ (primary) !$%^&*"),
    ("name", "12a"),
    ("name", "1.5"),
    ("source_ip.ip", "0.0.0.0"),
    ("source_ip.ip", "255.255.255.255"),
    ("source_ip.hostname", "a"),
    ("source_ip.hostname", "a" * 200),
    ("source_ip.hostname", "mx-1.example.com"),
    ("destination.hostname", "1"),
    ("destination.hostname", "10.1.2.3"),
    ("destination.hostname", "h" * 200),
    ("destination.port", 1),
    ("destination.port", 65535),
    ("destination.username", "u" * 200),
    ("destination.password", "p" * 200),
    ("destination.password", "pässwörd ✓"),
    ("destination.password", None),
    ("throttle_limits.max_concurrent_connections", 0),
    ("throttle_limits.max_concurrent_connections", 2147483647),
    ("throttle_limits.max_messages_per_hour", 0),
    ("throttle_limits.max_messages_per_hour", 2147483647),
]

NAME_CHARS = (
    "name must contain only ASCII characters 0x20-0x7e, excluding comma, pound sign and at-sign"
)
IP = "source_ip.ip must be a valid IPv4 address in dotted-decimal notation"
PORT = "destination.port must be an integer from 1 to 65535"
MCC = "throttle_limits.max_concurrent_connections must be an integer from 0 to 2147483647"
MPH = "throttle_limits.max_messages_per_hour must be an integer from 0 to 2147483647"
ENDS = "must start and end with a letter or number"

REFUSED = [
    ("name", "", ["name must be from 1 to 200 characters long"]),
    ("name", "x" * 201, ["name must be from 1 to 200 characters long"]),
    ("name", "a,b", [NAME_CHARS]),
    ("name", "a#b", [NAME_CHARS]),
    ("name", "a@b", [NAME_CHARS]),
    ("name", "tab\there", [NAME_CHARS]),
    ("name", "café", [NAME_CHARS]),
    ("name", "\x7f", [NAME_CHARS]),
    ("name", " lead", ["name must not have leading or trailing whitespace"]),
    ("name", "trail ", ["name must not have leading or trailing whitespace"]),
    ("name", "12", ["name must not be an integer"]),
    ("name", "-3", ["name must not be an integer"]),
    ("name", "+7", ["name must not be an integer"]),
    ("name", 12, ["name must be a string"]),
    ("name", None, ["name must not be null"]),
    ("source_ip.ip", "256.0.0.1", [IP]),
    ("source_ip.ip", "1.2.3", [IP]),
    ("source_ip.ip", "01.2.3.4", [IP]),
    ("source_ip.ip", "::1", [IP]),
    ("source_ip.ip", " 1.2.3.4", [IP]),
    ("source_ip.hostname", "", ["source_ip.hostname must be from 1 to 200 characters long"]),
    ("source_ip.hostname", "a" * 201, ["source_ip.hostname must be from 1 to 200 characters long"]),
    ("source_ip.hostname", "-mx.example.com", [f"source_ip.hostname {ENDS}"]),
    ("source_ip.hostname", "mx.example.com.", [f"source_ip.hostname {ENDS}"]),
    ("destination.hostname", "", ["destination.hostname must be from 1 to 200 characters long"]),
    (
        "destination.hostname",
        "h" * 201,
        ["destination.hostname must be from 1 to 200 characters long"],
    ),
    (
        "destination.hostname",
        "_smtp",
        [
            "destination.hostname must contain only letters, digits, '.' and '-'",
            f"destination.hostname {ENDS}",
        ],
    ),
    (
        "destination.hostname",
        "smtp_1.example.com",
        ["destination.hostname must contain only letters, digits, '.' and '-'"],
    ),
    (
        "destination.hostname",
        "mail server",
        ["destination.hostname must contain only letters, digits, '.' and '-'"],
    ),
    (
        "destination.username",
        None,
        [
            "destination.password must come with a destination.username (null both: no "
            "authentication)"
        ],
    ),
    (
        "destination.username",
        "a:b",
        ["destination.username must not contain ':' (Postfix separates the password with it)"],
    ),
    (
        "destination.username",
        "",
        ["destination.username must not be empty (null: no authentication)"],
    ),
    (
        "destination.username",
        " u",
        ["destination.username must not begin or end with a space (Postfix would drop it)"],
    ),
    (
        "destination.password",
        "secret ",
        ["destination.password must not begin or end with a space (Postfix would drop it)"],
    ),
    ("destination.port", 0, [PORT]),
    ("destination.port", 65536, [PORT]),
    ("destination.port", "25", [PORT]),
    ("destination.port", 25.0, [PORT]),
    ("destination.port", True, [PORT]),
    ("destination.port", 10**30, [PORT]),
    ("destination.port", None, ["destination.port must not be null"]),
    (
        "destination.username",
        "u" * 201,
        ["destination.username must be at most 200 characters long"],
    ),
    (
        "destination.password",
        "p" * 201,
        ["destination.password must be at most 200 characters long"],
    ),
    ("destination.password", 1234, ["destination.password must be a string"]),
    ("throttle_limits.max_concurrent_connections", -1, [MCC]),
    ("throttle_limits.max_concurrent_connections", 2147483648, [MCC]),
    ("throttle_limits.max_concurrent_connections", "2", [MCC]),
    ("throttle_limits.max_messages_per_hour", -1, [MPH]),
    ("throttle_limits.max_messages_per_hour", 1.5, [MPH]),
    ("throttle_limits.max_messages_per_hour", False, [MPH]),
    ("source_ip", "127.0.0.2", ["source_ip must be a hash"]),
    ("destination", None, ["destination must be a hash"]),
    ("throttle_limits", [], ["throttle_limits must be a hash"]),
    ("redirect", "relay-1", ["redirect must be a hash with an id or a name"]),
    ("redirect", {}, ["redirect must be a hash with an id or a name"]),
    ("redirect", {"id": "5"}, ["redirect id must be a positive integer"]),
    ("redirect", {"id": 0}, ["redirect id must be a positive integer"]),
    ("redirect", {"name": 5}, ["redirect name must be a string"]),
    # Beside an id, `name` and `type` are not used, but they are still checked, not dropped.
    ("redirect", {"id": 1, "name": 5}, ["redirect name must be a string"]),
    ("redirect", {"id": 1, "type": ["relay_server"]}, ["redirect type must be a string"]),
]


@pytest.mark.parametrize(("path", "value"), ACCEPTED)
def test_accepted_edge(admin, path, value):
    response = admin.post("/relay_servers", with_value(path, value))

    assert response.status_code == 200, response.json()
    created = response.json()["data"]["relay_server"]
    *parents, key = path.split(".")
    for parent in parents:
        created = created[parent]
    assert created[key] == value
    assert RelayServer.objects.count() == 1


@pytest.mark.parametrize(("path", "value", "messages"), REFUSED)
def test_refused_edge(admin, unchanged, path, value, messages):
    with unchanged():
        response = admin.post("/relay_servers", with_value(path, value))

    assert response.status_code == 400
    assert response.json() == error("validation_failed", *messages)


def test_every_broken_rule_of_one_value_is_reported(admin):
    response = admin.post("/relay_servers", with_value("name", " #" + "x" * 200))

    assert response.json()["error_messages"] == [
        "name must be from 1 to 200 characters long",
        NAME_CHARS,
        "name must not have leading or trailing whitespace",
    ]


@pytest.mark.parametrize("taken", ["Relay-1", "relay-1", "RELAY-1"])
def test_name_is_unique_case_insensitively(admin, unchanged, taken):
    existing = RelayServerFactory(name=taken)

    with unchanged():
        response = admin.post("/relay_servers", relay_payload(name="relay-1"))

    assert response.json() == error(
        "validation_failed",
        f"name 'relay-1' is already used by relay_server {existing.id} ({taken})",
    )


def test_the_database_constraint_catches_a_name_the_pre_check_missed(admin, unchanged, monkeypatch):
    """What a lost race looks like: the Python check saw the name free, the unique index did not."""
    from relays import services

    existing = RelayServerFactory(name="Relay-1")
    monkeypatch.setattr(services, "_assert_name_free", lambda vmta: None)

    with unchanged():
        response = admin.post("/relay_servers", relay_payload(name="relay-1"))

    assert response.status_code == 400
    assert response.json() == error(
        "validation_failed", "name 'relay-1' is already used by another VirtualMTA"
    )
    assert existing.name == "Relay-1"
