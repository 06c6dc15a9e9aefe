from tests.conftest import error, ok
from tests.factories import RelayServerFactory


def test_get_answers_the_vendor_shape(admin):
    target = RelayServerFactory(name="elsewhere")
    relay = RelayServerFactory(name="relay-1", with_auth=True, destination_port=26, redirect=target)

    response = admin.get(f"/relay_servers/{relay.id}")

    assert response.status_code == 200
    assert response.json() == ok(
        {
            "relay_server": {
                "id": relay.id,
                "name": "relay-1",
                "source_ip": {"ip": "127.0.0.2", "hostname": "outgoing-hostname.com"},
                "destination": {
                    "hostname": "destination-hostname.com",
                    "port": 26,
                    "username": "myusername",
                    "password": "mysecret",
                },
                "throttle_limits": {"max_concurrent_connections": 2, "max_messages_per_hour": 120},
                "redirect": {"type": "relay_server", "id": target.id, "name": "elsewhere"},
            }
        }
    )


def test_get_of_a_missing_id_is_not_found_in_the_envelope(admin):
    response = admin.get("/relay_servers/4242")

    assert response.status_code == 404
    assert response.json() == error("not_found", "no relay_server with id 4242")


def test_ids_beyond_any_integer_column_are_not_found(admin):
    response = admin.get("/relay_servers/99999999999999999999999")

    assert response.status_code == 404
    assert response.json()["error_code"] == "not_found"


def test_non_numeric_ids_are_not_found(admin):
    response = admin.get("/relay_servers/abc")

    assert response.status_code == 404
    assert response.json() == error(
        "not_found", "no such resource: /ga/api/v3/eng/relay_servers/abc"
    )
