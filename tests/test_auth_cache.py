"""A verified Basic password is remembered briefly, and every change to the account still takes
effect on the very next request."""

from unittest import mock

import pytest
from rest_framework import authentication

from relays.greenarrow.authentication import verified
from tests.conftest import GreenArrowClient
from tests.factories import UserFactory


@pytest.fixture
def password_checks():
    """Counts the full password checks (Django's authenticate(), which runs the hasher)."""
    with mock.patch.object(
        authentication, "authenticate", wraps=authentication.authenticate
    ) as counted:
        yield counted


@pytest.fixture
def sam(db):
    return UserFactory(username="sam", perms=["view_relayserver"])


def test_a_verified_password_is_checked_once(sam, password_checks):
    client = GreenArrowClient("sam")

    statuses = [client.get("/relay_servers").status_code for _ in range(3)]

    assert statuses == [200, 200, 200]
    assert password_checks.call_count == 1


def test_a_wrong_password_is_never_remembered(sam, password_checks):
    client = GreenArrowClient("sam", password="wrong")

    statuses = [client.get("/relay_servers").status_code for _ in range(2)]

    assert statuses == [401, 401]
    assert password_checks.call_count == 2


def test_the_cache_holds_no_password(sam):
    sam.set_password("a-distinctive-password")
    sam.save()
    GreenArrowClient("sam", password="a-distinctive-password").get("/relay_servers")

    [(key, value)] = verified._entries.items()
    assert len(key) == 32 and b"distinctive" not in key
    assert "distinctive" not in repr(value)
    assert value[:2] == (sam.pk, sam.password)


def test_a_password_change_takes_effect_on_the_next_request(sam):
    old = GreenArrowClient("sam")
    assert old.get("/relay_servers").status_code == 200

    sam.set_password("new-password")
    sam.save()

    assert old.get("/relay_servers").status_code == 401
    assert GreenArrowClient("sam", password="new-password").get("/relay_servers").status_code == 200


def test_deactivation_takes_effect_on_the_next_request(sam):
    client = GreenArrowClient("sam")
    assert client.get("/relay_servers").status_code == 200

    sam.is_active = False
    sam.save()

    assert client.get("/relay_servers").status_code == 401


def test_loss_of_staff_takes_effect_on_the_next_request(sam):
    client = GreenArrowClient("sam")
    assert client.get("/relay_servers").status_code == 200

    sam.is_staff = False
    sam.save()

    assert client.get("/relay_servers").status_code == 401


def test_a_renamed_account_no_longer_answers_to_its_old_name(sam):
    client = GreenArrowClient("sam")
    assert client.get("/relay_servers").status_code == 200

    sam.username = "samuel"
    sam.save()

    assert client.get("/relay_servers").status_code == 401


def test_a_deleted_account_is_refused(sam):
    client = GreenArrowClient("sam")
    assert client.get("/relay_servers").status_code == 200

    sam.delete()

    assert client.get("/relay_servers").status_code == 401


def test_an_entry_expires(sam, password_checks, settings, monkeypatch):
    settings.RELAYAPI_AUTH_CACHE_SECONDS = 60
    clock = [1000.0]
    monkeypatch.setattr("relays.greenarrow.authentication.time.monotonic", lambda: clock[0])
    client = GreenArrowClient("sam")

    client.get("/relay_servers")
    clock[0] += 59
    client.get("/relay_servers")
    assert password_checks.call_count == 1
    clock[0] += 2
    client.get("/relay_servers")
    assert password_checks.call_count == 2


def test_a_zero_lifetime_turns_the_cache_off(sam, password_checks, settings):
    settings.RELAYAPI_AUTH_CACHE_SECONDS = 0
    client = GreenArrowClient("sam")

    client.get("/relay_servers")
    client.get("/relay_servers")

    assert password_checks.call_count == 2


def test_the_cache_is_bounded(db):
    cache = type(verified)(max_entries=2)
    users = [UserFactory(username=f"u{n}") for n in range(3)]

    for user in users:
        cache.remember(user.username, "pw", user)

    assert cache.get("u0", "pw") is None
    assert cache.get("u2", "pw") == (users[2].pk, users[2].password)
