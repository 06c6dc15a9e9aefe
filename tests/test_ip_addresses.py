import pytest

from relays.models import IpAddress
from tests.conftest import error, ok, relay_payload
from tests.factories import IpAddressFactory, RelayServerFactory


def ip_payload(**overrides):
    record = {"name": "ipaddr-1", "ip": "10.0.0.28", "hostname": "hostname-28.com"}
    record.update(overrides)
    return {"ip_address": record}


def test_create_answers_the_full_record_with_defaults(admin):
    response = admin.post("/ip_addresses", ip_payload())

    assert response.status_code == 200
    created = IpAddress.objects.get()
    assert response.json() == ok(
        {
            "ip_address": {
                "id": created.id,
                "name": "ipaddr-1",
                "ip": "10.0.0.28",
                "hostname": "hostname-28.com",
                "delivery_paused": False,
                "redirect": None,
                "throttling_template": None,
                "default": {"max_concurrent_connections": 0, "max_messages_per_hour": 0},
            }
        }
    )


def test_create_with_every_attribute(admin):
    target = RelayServerFactory(name="relay-x")

    response = admin.post(
        "/ip_addresses",
        ip_payload(
            delivery_paused=True,
            redirect={"name": "relay-x"},
            throttling_template=None,
            default={"max_concurrent_connections": 5, "max_messages_per_hour": 900},
        ),
    )

    body = response.json()["data"]["ip_address"]
    assert body["delivery_paused"] is True
    assert body["redirect"] == {"type": "relay_server", "id": target.id, "name": "relay-x"}
    assert body["default"] == {"max_concurrent_connections": 5, "max_messages_per_hour": 900}


def test_the_vendor_relay_server_example_redirects_to_ipaddr_1(admin):
    ip = IpAddressFactory(name="ipaddr-1")
    payload = relay_payload(redirect={"name": "ipaddr-1"})  # the vendor page's example, verbatim

    response = admin.post("/relay_servers", payload)

    assert response.status_code == 200
    assert response.json()["data"]["relay_server"]["redirect"] == {
        "type": "ip_address",
        "id": ip.id,
        "name": "ipaddr-1",
    }


def test_put_is_partial(admin):
    ip = IpAddressFactory(max_concurrent_connections=3)

    response = admin.put(
        f"/ip_addresses/{ip.id}", {"ip_address": {"hostname": "other.example.com"}}
    )

    body = response.json()["data"]["ip_address"]
    assert (body["hostname"], body["ip"], body["default"]["max_concurrent_connections"]) == (
        "other.example.com",
        "10.0.0.28",
        3,
    )


def test_delete_answers_empty_data(admin):
    ip = IpAddressFactory()

    assert admin.delete(f"/ip_addresses/{ip.id}").json() == ok({})
    assert not IpAddress.objects.exists()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"name": "IPADDR-A"}, ["ipaddr-a"]),
        ({"ip": "10.0.0.2"}, ["ipaddr-b", "ipaddr-c"]),
        ({"hostname": "MX.EXAMPLE.COM"}, ["ipaddr-c"]),
        ({"ip": "10.0.0.2", "hostname": "mx.example.com"}, ["ipaddr-c"]),
        ({"name": "nobody"}, []),
    ],
)
def test_list_filters(admin, query, expected):
    IpAddressFactory(name="ipaddr-a", ip="10.0.0.1")
    IpAddressFactory(name="ipaddr-b", ip="10.0.0.2")
    IpAddressFactory(name="ipaddr-c", ip="10.0.0.2", hostname="mx.example.com")

    data = admin.get("/ip_addresses", **query).json()["data"]

    assert [item["name"] for item in data["ip_addresses"]] == expected
    assert data["pagination"]["num_records"] == len(expected)


def test_a_malformed_ip_filter_is_an_invalid_request(admin):
    response = admin.get("/ip_addresses", ip="10.0.0")

    assert response.json() == error(
        "invalid_request", "ip must be a valid IPv4 address in dotted-decimal notation"
    )


HELO_CHARS = "hostname must contain only letters, digits, '.' and '-'"


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("hostname", "a"),
        ("hostname", "h" * 200),
        ("hostname", "hostname-28.com"),
        ("hostname", "1host"),
        ("ip", "0.0.0.0"),
        ("delivery_paused", True),
        ("default", {"max_concurrent_connections": 2147483647, "max_messages_per_hour": 0}),
    ],
)
def test_accepted_edges(admin, attribute, value):
    response = admin.post("/ip_addresses", ip_payload(**{attribute: value}))

    assert response.status_code == 200, response.json()
    assert response.json()["data"]["ip_address"][attribute] == value


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("hostname", "", "hostname must be from 1 to 200 characters long"),
        ("hostname", "h" * 201, "hostname must be from 1 to 200 characters long"),
        ("hostname", "under_score.com", HELO_CHARS),
        ("hostname", "-lead.com", "hostname must start and end with a letter or number"),
        ("hostname", "10.0.0.1", "hostname must be a host name, not an IPv4 address"),
        ("ip", "10.0.0.256", "ip must be a valid IPv4 address in dotted-decimal notation"),
        ("delivery_paused", "false", "delivery_paused must be true or false"),
        ("delivery_paused", 0, "delivery_paused must be true or false"),
        (
            "throttling_template",
            {"id": 3},
            "throttling_template must be null: throttling templates are not supported by this server",
        ),
        (
            "default",
            {"max_concurrent_connections": -1, "max_messages_per_hour": 0},
            "default.max_concurrent_connections must be an integer from 0 to 2147483647",
        ),
        ("name", "12", "name must not be an integer"),
    ],
)
def test_refused_edges(admin, unchanged, attribute, value, message):
    with unchanged():
        response = admin.post("/ip_addresses", ip_payload(**{attribute: value}))

    assert response.status_code == 400
    assert response.json() == error("validation_failed", message)


def test_get_of_a_relay_server_id_is_not_an_ip_address(admin):
    relay = RelayServerFactory()

    response = admin.get(f"/ip_addresses/{relay.id}")

    assert response.json() == error("not_found", f"no ip_address with id {relay.id}")
