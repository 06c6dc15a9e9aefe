"""Credentials are bound to their destination: whoever may change a relay but not reveal its
password cannot move the relay to a server of theirs and have the stored password sent there.
Through every door a move (another host or port) drops the stored username and password unless
the same request gives a new password, or the caller may reveal credentials anyway."""

import json

import pytest

from relays import probe
from relays.models import RelayServer
from relays.postfix.render import render
from tests import signed
from tests.conftest import store_entries
from tests.factories import RelayServerFactory
from tests.test_probe import relay_to, sink_fixtures

VIEW, CHANGE = "view_relayserver", "change_relayserver"
REVEAL = "reveal_relay_credentials"
THIEF_HOST = "smtp.attacker.example"


@pytest.fixture
def relay(db):
    return RelayServerFactory(name="r", with_auth=True)  # myusername / mysecret


def stored(relay):
    relay = RelayServer.objects.get(pk=relay.pk)
    return relay.destination_hostname, relay.destination_username, relay.destination_password


def put_destination(client, relay, **destination):
    return client.put(f"/relay_servers/{relay.id}", {"relay_server": {"destination": destination}})


# --- GreenArrow API ---------------------------------------------------------------------------


def test_a_put_moving_the_relay_drops_its_credentials(persona, relay):
    editor = persona("editor", perms=[VIEW, CHANGE])

    response = put_destination(editor, relay, hostname=THIEF_HOST)

    assert response.status_code == 200
    assert response.json()["data"]["relay_server"]["destination"] == {
        "hostname": THIEF_HOST,
        "port": 25,
        "username": None,
        "password": None,
    }
    assert stored(relay) == (THIEF_HOST, None, None)
    entry = store_entries().get(action="update", record_id=relay.pk)
    assert entry.before["destination_password"] == "(redacted)"
    assert entry.after["destination_password"] is None


def test_a_put_moving_the_port_drops_them_too(persona, relay):
    editor = persona("editor", perms=[VIEW, CHANGE])

    put_destination(editor, relay, port=2525)

    assert stored(relay) == ("destination-hostname.com", None, None)


def test_the_mask_sent_back_with_a_move_is_no_password_given_again(persona, relay):
    editor = persona("editor", perms=[VIEW, CHANGE])

    put_destination(editor, relay, hostname=THIEF_HOST, username="myusername", password="********")

    assert stored(relay) == (THIEF_HOST, "myusername", None)


def test_a_move_with_a_new_password_keeps_the_username(persona, relay):
    editor = persona("editor", perms=[VIEW, CHANGE])

    put_destination(editor, relay, hostname="smtp.new.example", password="new-secret")

    assert stored(relay) == ("smtp.new.example", "myusername", "new-secret")


def test_a_write_that_does_not_move_the_relay_keeps_its_credentials(persona, relay):
    editor = persona("editor", perms=[VIEW, CHANGE])

    editor.put(
        f"/relay_servers/{relay.id}",
        {"relay_server": {"throttle_limits": {"max_messages_per_hour": 5}}},
    )
    put_destination(editor, relay, hostname="DESTINATION-hostname.com")  # any case: same host

    assert stored(relay) == ("DESTINATION-hostname.com", "myusername", "mysecret")


def test_who_may_reveal_the_password_moves_the_relay_with_it(persona, relay):
    trusted = persona("trusted", perms=[VIEW, CHANGE, REVEAL])

    put_destination(trusted, relay, hostname="smtp.new.example")

    assert stored(relay) == ("smtp.new.example", "myusername", "mysecret")


def test_a_moved_relay_renders_no_sasl_password_for_the_new_host(persona, relay):
    editor = persona("editor", perms=[VIEW, CHANGE])

    put_destination(editor, relay, hostname=THIEF_HOST)

    rendered = b"".join(content for content, _mode in render("/etc/postfix").files.values())
    assert b"mysecret" not in rendered
    assert b"myusername" not in rendered


# --- Mail Manager API -------------------------------------------------------------------------


@pytest.fixture
def editor_key(persona):
    persona("editor", perms=[VIEW, CHANGE])
    return signed.new_key("editor")


def test_update_relay_moving_the_relay_without_authentication_drops_the_credentials(
    editor_key, relay
):
    response = signed.call(
        editor_key, "UpdateRelay", {"RelayId": relay.relay_id, "ServerName": THIEF_HOST}
    )

    assert response.status_code == 200, response.content
    assert stored(relay) == (THIEF_HOST, None, None)
    got = json.loads(signed.call(editor_key, "GetRelay", {"RelayId": relay.relay_id}).content)
    assert got["Authentication"] == {"NoAuthentication": {}}


def test_update_relay_writing_back_the_own_secret_arn_with_a_move_drops_them(editor_key, relay):
    signed.call(
        editor_key,
        "UpdateRelay",
        {
            "RelayId": relay.relay_id,
            "ServerPort": 2525,
            "Authentication": {"SecretArn": relay.own_secret_arn},
        },
    )

    assert stored(relay) == ("destination-hostname.com", None, None)


# --- the admin --------------------------------------------------------------------------------


def admin_client(client, username, perms):
    from tests.factories import UserFactory

    UserFactory(username=username, perms=perms)
    client.login(username=username, password="pw")
    return client


def change_form(relay, **changes):
    return {
        "name": relay.name,
        "source_ip": relay.source_ip,
        "source_hostname": relay.source_hostname,
        "destination_hostname": relay.destination_hostname,
        "destination_port": str(relay.destination_port),
        "destination_username": relay.destination_username or "",
        "destination_password": "",
        "max_concurrent_connections": "0",
        "max_messages_per_hour": "0",
        "redirect": "",
        "secret_arn": "",
        "tags-TOTAL_FORMS": "0",
        "tags-INITIAL_FORMS": "0",
        **changes,
    }


def test_the_admin_moving_the_relay_drops_the_credentials_and_says_so(client, relay):
    editor = admin_client(client, "editor", [VIEW, CHANGE])

    page = editor.post(
        f"/admin/relays/relayserver/{relay.pk}/change/",
        change_form(relay, destination_hostname=THIEF_HOST),
        follow=True,
    )

    assert stored(relay) == (THIEF_HOST, None, None)
    assert "credentials are bound to their destination" in page.content.decode()


def test_the_admin_keeps_the_credentials_of_an_edit_that_does_not_move_the_relay(client, relay):
    editor = admin_client(client, "editor", [VIEW, CHANGE])

    page = editor.post(
        f"/admin/relays/relayserver/{relay.pk}/change/",
        change_form(relay, max_messages_per_hour="7"),
        follow=True,
    )

    assert page.status_code == 200
    assert stored(relay) == ("destination-hostname.com", "myusername", "mysecret")
    assert RelayServer.objects.get(pk=relay.pk).max_messages_per_hour == 7
    assert "credentials are bound" not in page.content.decode()


def test_the_admin_keeps_them_when_the_move_types_the_password_again(client, relay):
    editor = admin_client(client, "editor", [VIEW, CHANGE])

    editor.post(
        f"/admin/relays/relayserver/{relay.pk}/change/",
        change_form(relay, destination_hostname="smtp.new.example", destination_password="pw2"),
    )

    assert stored(relay) == ("smtp.new.example", "myusername", "pw2")


# --- no page renders a stored password --------------------------------------------------------


def test_a_viewer_s_admin_page_says_set_and_never_shows_the_password(client, relay):
    viewer = admin_client(client, "viewer", [VIEW])

    page = viewer.get(f"/admin/relays/relayserver/{relay.pk}/change/")

    assert page.status_code == 200
    body = page.content.decode()
    assert "mysecret" not in body
    assert "SMTP password" in body and ">set<" in body.replace("\n", "").replace(" ", "")


def test_a_viewer_with_every_view_permission_still_cannot_read_a_password(client, relay):
    from django.contrib.auth.models import Permission

    viewer = admin_client(client, "viewer", [])
    from django.contrib.auth import get_user_model

    get_user_model().objects.get(username="viewer").user_permissions.set(
        Permission.objects.filter(codename__startswith="view_")
    )

    page = viewer.get(f"/admin/relays/relayserver/{relay.pk}/change/")

    assert page.status_code == 200
    assert "mysecret" not in page.content.decode()


def test_an_editor_s_page_never_contains_the_password_either(client, relay):
    editor = admin_client(client, "editor", [VIEW, CHANGE])

    page = editor.get(f"/admin/relays/relayserver/{relay.pk}/change/")

    assert "mysecret" not in page.content.decode()


# --- then through the probe -------------------------------------------------------------------

start_sink, sink, plain_sink, tls_sink, scripted = sink_fixtures()


def test_a_relay_moved_to_the_thief_s_server_is_probed_without_its_credentials(persona, tls_sink):
    """The attack of the finding: move the relay to a server of one's own (it offers STARTTLS
    and takes AUTH), then probe it: the moved relay has no password left to send."""
    relay = relay_to(2525, destination_hostname="smtp.victim.example")
    editor = persona("editor", perms=[VIEW, CHANGE, "probe_relayserver"])
    put_destination(editor, relay, hostname="127.0.0.1", port=tls_sink.port)

    result = probe.probe(RelayServer.objects.get(pk=relay.pk), timeout=2)

    assert result.ok, result.summary()
    assert "auth" not in [step.name for step in result.steps]
    assert tls_sink.auth_attempts == 0
