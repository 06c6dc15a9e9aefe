from relays.models import RelayServer, VirtualMta
from tests.conftest import error, ok, relay_payload
from tests.factories import RelayServerFactory


def full_record(id, **overrides):
    record = {"id": id, **relay_payload()["relay_server"], "redirect": None}
    record.update(overrides)
    return record


def test_create_answers_200_with_the_full_record(admin):
    response = admin.post("/relay_servers", relay_payload())

    assert response.status_code == 200
    relay = RelayServer.objects.get()
    assert response.json() == ok({"relay_server": full_record(relay.id)})
    assert relay.type == "relay_server"
    assert (relay.name, relay.destination_port, relay.destination_password) == (
        "new-relay-server",
        25,
        "mysecret",
    )


def test_create_with_redirect_by_name_answers_the_target_reference(admin):
    target = RelayServerFactory(name="ipaddr-1")

    response = admin.post("/relay_servers", relay_payload(redirect={"name": "IPADDR-1"}))

    assert response.status_code == 200
    body = response.json()["data"]["relay_server"]
    assert body["redirect"] == {"type": "relay_server", "id": target.id, "name": "ipaddr-1"}
    assert RelayServer.objects.get(name="new-relay-server").redirect_id == target.id


def test_redirect_id_wins_over_name(admin):
    by_id = RelayServerFactory(name="by-id")
    RelayServerFactory(name="by-name")

    response = admin.post(
        "/relay_servers", relay_payload(redirect={"id": by_id.id, "name": "by-name"})
    )

    assert response.json()["data"]["relay_server"]["redirect"]["name"] == "by-id"


def test_credentials_default_to_null_meaning_no_authentication(admin):
    payload = relay_payload()
    del payload["relay_server"]["destination"]["username"]
    del payload["relay_server"]["destination"]["password"]

    response = admin.post("/relay_servers", payload)

    destination = response.json()["data"]["relay_server"]["destination"]
    assert (destination["username"], destination["password"]) == (None, None)


def test_ids_come_from_one_sequence_shared_by_every_virtual_mta(admin):
    first = admin.post("/relay_servers", relay_payload(name="a")).json()["data"]["relay_server"]
    second = admin.post("/relay_servers", relay_payload(name="b")).json()["data"]["relay_server"]

    assert second["id"] > first["id"]
    assert sorted(VirtualMta.objects.values_list("id", flat=True)) == [first["id"], second["id"]]


def test_create_reports_every_missing_attribute_at_once(admin, unchanged):
    with unchanged():
        response = admin.post("/relay_servers", {"relay_server": {}})

    assert response.status_code == 400
    assert response.json() == error(
        "validation_failed",
        "name is required",
        "source_ip is required",
        "destination is required",
        "throttle_limits is required",
    )


def test_create_reports_missing_nested_attributes(admin, unchanged):
    with unchanged():
        response = admin.post(
            "/relay_servers",
            relay_payload(destination={"hostname": "x.example"}, throttle_limits={}),
        )

    assert response.json() == error(
        "validation_failed",
        "destination.port is required",
        "throttle_limits.max_concurrent_connections is required",
        "throttle_limits.max_messages_per_hour is required",
    )


def test_create_refused_for_unknown_redirect_target(admin, unchanged):
    with unchanged():
        by_name = admin.post("/relay_servers", relay_payload(redirect={"name": "nowhere"}))
        by_id = admin.post("/relay_servers", relay_payload(redirect={"id": 999}))

    assert by_name.json() == error(
        "validation_failed", "redirect refers to no VirtualMTA named 'nowhere'"
    )
    assert by_id.json() == error(
        "validation_failed", "redirect refers to no VirtualMTA with id 999"
    )
