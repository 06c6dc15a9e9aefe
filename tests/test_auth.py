"""HTTP Basic against active staff users; Django model permissions decide what each may do."""

import base64

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from tests.conftest import GreenArrowClient, error, relay_payload
from tests.factories import RelayServerFactory, UserFactory

ALL = ["view_relayserver", "add_relayserver", "change_relayserver", "delete_relayserver"]


def test_no_credentials_is_401_with_a_basic_challenge(anonymous):
    response = anonymous.get("/relay_servers")

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="RelayAPI"'
    assert response.json() == error("unauthorized", "Authentication credentials were not provided.")


def test_wrong_password_is_401(db):
    UserFactory(username="sam", perms=ALL)

    response = GreenArrowClient("sam", password="wrong").get("/relay_servers")

    assert response.status_code == 401
    assert response.json() == error("unauthorized", "Invalid username/password.")


def test_a_malformed_authorization_header_is_401(db):
    client = GreenArrowClient()
    client.client.defaults["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(b"no-colon").decode()

    response = client.get("/relay_servers")

    assert response.status_code == 401
    assert response.json()["error_code"] == "unauthorized"


def test_users_who_may_not_log_in_to_the_admin_get_the_wrong_password_answer(persona):
    outsider = persona("outsider", perms=ALL, staff=False)
    retired = persona("retired", perms=ALL, active=False)

    # The right password of an account that may not log in is not confirmed.
    assert outsider.get("/relay_servers").json() == error(
        "unauthorized", "Invalid username/password."
    )
    assert retired.get("/relay_servers").json() == error(
        "unauthorized", "Invalid username/password."
    )


@pytest.mark.parametrize(
    ("perms", "expected"),
    [
        ([], {"GET": 403, "POST": 403, "PUT": 403, "DELETE": 403}),
        (["view_relayserver"], {"GET": 200, "POST": 403, "PUT": 403, "DELETE": 403}),
        (
            ["view_relayserver", "add_relayserver"],
            {"GET": 200, "POST": 200, "PUT": 403, "DELETE": 403},
        ),
        (
            ["view_relayserver", "change_relayserver"],
            {"GET": 200, "POST": 403, "PUT": 200, "DELETE": 403},
        ),
        (
            ["view_relayserver", "delete_relayserver"],
            {"GET": 200, "POST": 403, "PUT": 403, "DELETE": 200},
        ),
    ],
)
def test_model_permissions_decide_each_method(persona, perms, expected):
    client = persona("staff", perms=perms)
    relay = RelayServerFactory()

    got = {
        "GET": client.get(f"/relay_servers/{relay.id}").status_code,
        "POST": client.post("/relay_servers", relay_payload()).status_code,
        "PUT": client.put(
            f"/relay_servers/{relay.id}", {"relay_server": {"name": "renamed"}}
        ).status_code,
        "DELETE": client.delete(f"/relay_servers/{relay.id}").status_code,
    }

    assert got == expected


def test_forbidden_is_403_in_the_envelope_and_writes_nothing(persona, unchanged):
    viewer = persona("viewer", perms=["view_relayserver"])

    with unchanged():
        response = viewer.post("/relay_servers", relay_payload())

    assert response.status_code == 403
    assert response.json() == error(
        "forbidden", "You do not have permission to perform this action."
    )


def test_a_superuser_can_be_created_without_a_prompt(db, monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "root")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "s3cret-pass")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "root@example.com")

    call_command("createsuperuser", interactive=False, verbosity=0)

    assert User.objects.get(username="root").is_superuser
    assert GreenArrowClient("root", "s3cret-pass").get("/relay_servers").status_code == 200
