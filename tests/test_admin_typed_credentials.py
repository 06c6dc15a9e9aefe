"""A typed SMTP password is never silently thrown away: the page never sends a password back,
so a form that comes back with an error says at the field that it must be typed again; "clear"
and new credentials at once is refused; the add form has nothing stored to clear."""

import pytest

from relays.models import RelayServer
from tests.factories import RelayServerFactory, UserFactory
from tests.test_admin_relay_servers import ADD, relay_form
from tests.test_credentials_bound import change_form


@pytest.fixture
def operator(client, db):
    UserFactory(username="operator", is_superuser=True)
    client.login(username="operator", password="pw")
    return client


def errors(page):
    assert page.status_code == 200, page.status_code
    return dict(page.context["adminform"].form.errors)


def test_an_add_that_comes_back_with_an_error_asks_for_the_password_again(operator):
    page = operator.post(
        ADD,
        relay_form(
            destination_port="0", destination_username="u", destination_password="typed-secret"
        ),
    )

    problems = errors(page)
    assert problems["destination_password"] == [
        "Type the password again: it is not sent back with a form that has errors."
    ]
    assert "typed-secret" not in page.content.decode()
    assert not RelayServer.objects.exists()


def test_an_edit_that_comes_back_with_an_error_asks_for_the_new_password_again(operator):
    relay = RelayServerFactory(name="r", with_auth=True)

    page = operator.post(
        f"/admin/relays/relayserver/{relay.pk}/change/",
        change_form(relay, max_messages_per_hour="-1", destination_password="rotated"),
    )

    assert "destination_password" in errors(page)
    assert RelayServer.objects.get(pk=relay.pk).destination_password == "mysecret"


def test_clear_and_new_credentials_together_is_refused(operator):
    relay = RelayServerFactory(name="r", with_auth=True)

    page = operator.post(
        f"/admin/relays/relayserver/{relay.pk}/change/",
        change_form(relay, clear_credentials="on", destination_password="new"),
    )

    assert errors(page)["clear_credentials"] == [
        "Clear stored credentials, or give new ones: not both at once."
    ]
    assert RelayServer.objects.get(pk=relay.pk).destination_password == "mysecret"


def test_clear_alone_clears(operator):
    relay = RelayServerFactory(name="r", with_auth=True)

    operator.post(
        f"/admin/relays/relayserver/{relay.pk}/change/", change_form(relay, clear_credentials="on")
    )

    stored = RelayServer.objects.get(pk=relay.pk)
    assert (stored.destination_username, stored.destination_password) == (None, None)


def test_the_add_form_offers_no_clear(operator):
    page = operator.get(ADD)

    assert 'name="clear_credentials"' not in page.content.decode()
