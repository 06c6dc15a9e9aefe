import copy

from relays.greenarrow.examples import UPDATED_RELAY_SERVER
from relays.models import RelayServer
from tests.conftest import error, ok
from tests.factories import RelayServerFactory


def test_put_of_the_vendor_example_replaces_every_attribute(admin):
    relay = RelayServerFactory(name="relay-29", with_auth=True)
    record = copy.deepcopy(UPDATED_RELAY_SERVER)

    response = admin.put(f"/relay_servers/{relay.id}", {"relay_server": record})

    assert response.status_code == 200
    assert response.json() == ok({"relay_server": {"id": relay.id, **record}})
    relay.refresh_from_db()
    assert (relay.source_ip, relay.destination_port, relay.max_messages_per_hour) == (
        "127.0.0.7",
        1025,
        500,
    )


def test_put_keeps_omitted_attributes(admin):
    relay = RelayServerFactory(name="keep-me", with_auth=True)

    response = admin.put(f"/relay_servers/{relay.id}", {"relay_server": {"name": "renamed"}})

    body = response.json()["data"]["relay_server"]
    assert body["name"] == "renamed"
    assert body["destination"] == {
        "hostname": "destination-hostname.com",
        "port": 25,
        "username": "myusername",
        "password": "mysecret",
    }


def test_put_keeps_omitted_destination_keys(admin):
    relay = RelayServerFactory(with_auth=True)

    admin.put(f"/relay_servers/{relay.id}", {"relay_server": {"destination": {"port": 2525}}})

    relay.refresh_from_db()
    assert (relay.destination_port, relay.destination_hostname, relay.destination_username) == (
        2525,
        "destination-hostname.com",
        "myusername",
    )


def test_explicit_null_clears_credentials_and_redirect(admin):
    target = RelayServerFactory()
    relay = RelayServerFactory(with_auth=True, redirect=target)

    response = admin.put(
        f"/relay_servers/{relay.id}",
        {"relay_server": {"destination": {"username": None, "password": None}, "redirect": None}},
    )

    assert response.status_code == 200
    relay.refresh_from_db()
    assert (relay.destination_username, relay.destination_password, relay.redirect) == (
        None,
        None,
        None,
    )


def test_what_get_answered_can_be_put_back_unchanged(admin):
    target = RelayServerFactory()
    relay = RelayServerFactory(with_auth=True, redirect=target)
    got = admin.get(f"/relay_servers/{relay.id}").json()["data"]

    response = admin.put(f"/relay_servers/{relay.id}", got)

    assert response.status_code == 200
    assert response.json()["data"] == got


def test_renaming_to_another_case_of_its_own_name_is_allowed(admin):
    relay = RelayServerFactory(name="relay-a")

    response = admin.put(f"/relay_servers/{relay.id}", {"relay_server": {"name": "RELAY-A"}})

    assert response.status_code == 200
    relay.refresh_from_db()
    assert relay.name == "RELAY-A"


def test_refused_put_changes_nothing(admin, unchanged):
    relay = RelayServerFactory(name="relay-b")
    RelayServerFactory(name="taken")

    with unchanged():
        response = admin.put(
            f"/relay_servers/{relay.id}",
            {"relay_server": {"name": "TAKEN", "destination": {"port": 70000}}},
        )

    assert response.status_code == 400
    assert response.json() == error(
        "validation_failed",
        "destination.port must be an integer from 1 to 65535",
    )


def test_name_taken_is_reported_when_the_rest_is_valid(admin, unchanged):
    relay = RelayServerFactory(name="relay-b")
    taken = RelayServerFactory(name="taken")

    with unchanged():
        response = admin.put(f"/relay_servers/{relay.id}", {"relay_server": {"name": "TAKEN"}})

    assert response.json() == error(
        "validation_failed", f"name 'TAKEN' is already used by relay_server {taken.id} (taken)"
    )


def test_put_to_a_missing_record_is_not_found(admin):
    response = admin.put("/relay_servers/777", {"relay_server": {"name": "x"}})

    assert response.status_code == 404
    assert response.json() == error("not_found", "no relay_server with id 777")
    assert not RelayServer.objects.exists()
