"""Who sees a stored SMTP password: holders of `reveal_relay_credentials` (superusers have it).
Everyone else sees `********`, which a PUT may send back to keep the password; no answer that can
carry one is cached; the admin never renders it."""

import json

import pytest
from django.test import Client

from relays.models import RelayServer
from tests.conftest import error, relay_payload
from tests.factories import RelayServerFactory

MASK = "********"
VIEW, CHANGE, ADD = "view_relayserver", "change_relayserver", "add_relayserver"


@pytest.fixture
def relay(db):
    return RelayServerFactory(name="r", with_auth=True)  # myusername / mysecret


def destination(client, relay):
    return client.get(f"/relay_servers/{relay.id}").json()["data"]["relay_server"]["destination"]


def test_a_viewer_sees_the_username_and_a_masked_password(persona, relay):
    viewer = persona("viewer", perms=[VIEW])

    assert destination(viewer, relay) == {
        "hostname": "destination-hostname.com",
        "port": 25,
        "username": "myusername",
        "password": MASK,
    }


def test_no_password_stays_null_for_a_viewer(persona, db):
    relay = RelayServerFactory(name="open")
    viewer = persona("viewer", perms=[VIEW])

    assert destination(viewer, relay)["password"] is None


def test_the_credentials_permission_shows_the_password(persona, relay):
    trusted = persona("trusted", perms=[VIEW, "reveal_relay_credentials"])

    assert destination(trusted, relay)["password"] == "mysecret"


def test_a_superuser_sees_the_password(admin, relay):
    assert destination(admin, relay)["password"] == "mysecret"


def test_what_a_viewer_got_can_be_put_back_and_keeps_the_password(persona, relay):
    editor = persona("editor", perms=[VIEW, CHANGE])
    got = editor.get(f"/relay_servers/{relay.id}").json()["data"]

    response = editor.put(f"/relay_servers/{relay.id}", got)

    assert response.status_code == 200
    assert response.json()["data"] == got
    assert RelayServer.objects.get(id=relay.id).destination_password == "mysecret"


def test_a_new_password_replaces_the_stored_one(persona, relay):
    editor = persona("editor", perms=[VIEW, CHANGE])

    editor.put(f"/relay_servers/{relay.id}", {"relay_server": {"destination": {"password": "new"}}})

    assert RelayServer.objects.get(id=relay.id).destination_password == "new"


def test_the_mask_is_not_a_password_for_a_new_relay(persona, unchanged):
    creator = persona("creator", perms=[VIEW, ADD])
    payload = relay_payload()
    payload["relay_server"]["destination"]["password"] = MASK

    with unchanged():
        response = creator.post("/relay_servers", payload)

    assert response.json() == error(
        "validation_failed",
        "destination.password ******** keeps a stored password; a new relay server has none",
    )


@pytest.mark.parametrize("path", ["/relay_servers/{id}", "/relay_servers", "/relay_servers/999999"])
def test_api_answers_are_never_cached(admin, relay, path):
    response = admin.get(path.format(id=relay.id))

    assert "no-store" in response["Cache-Control"]


def test_an_unknown_api_path_is_never_cached(admin):
    assert "no-store" in admin.get("/no_such_thing")["Cache-Control"]


def test_mail_manager_answers_are_never_cached(db):
    response = Client().post("/", "{}", content_type="application/x-amz-json-1.0")

    assert json.loads(response.content)["__type"].endswith("UnknownOperationException")
    assert response["Cache-Control"] == "no-store"


# --- the admin: write-only ---


def admin_form(relay, **changes):
    return {
        "name": relay.name,
        "source_ip": relay.source_ip,
        "source_hostname": relay.source_hostname,
        "destination_hostname": relay.destination_hostname,
        "destination_port": relay.destination_port,
        "destination_username": relay.destination_username or "",
        "destination_password": "",
        "max_concurrent_connections": 0,
        "max_messages_per_hour": 0,
        **changes,
    }


def test_the_admin_page_never_contains_the_stored_password(browser, relay):
    page = browser.get(f"/admin/relays/relayserver/{relay.id}/change/")

    assert page.status_code == 200
    assert b"mysecret" not in page.content
    assert b"myusername" in page.content


def test_a_blank_password_in_the_admin_keeps_the_stored_one(browser, relay):
    browser.post(f"/admin/relays/relayserver/{relay.id}/change/", admin_form(relay))

    assert RelayServer.objects.get(id=relay.id).destination_password == "mysecret"


def test_a_password_typed_in_the_admin_replaces_the_stored_one(browser, relay):
    browser.post(
        f"/admin/relays/relayserver/{relay.id}/change/",
        admin_form(relay, destination_password="typed"),
    )

    assert RelayServer.objects.get(id=relay.id).destination_password == "typed"


def test_clear_credentials_in_the_admin_removes_username_and_password(browser, relay):
    browser.post(
        f"/admin/relays/relayserver/{relay.id}/change/", admin_form(relay, clear_credentials="on")
    )

    stored = RelayServer.objects.get(id=relay.id)
    assert (stored.destination_username, stored.destination_password) == (None, None)
