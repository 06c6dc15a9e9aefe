"""No door silently reverts another's work: a write based on an older version of a record is
refused. The admin's forms carry the version they were opened on; the GreenArrow API gives an
ETag on every single-record answer and honours If-Match on PUT and DELETE (optional, so vendor
scripts keep working)."""

import pytest

from relays.models import RelayServer
from tests.conftest import error
from tests.factories import RelayServerFactory, UserFactory
from tests.test_credentials_bound import change_form


@pytest.fixture
def relay(db):
    return RelayServerFactory(name="r", destination_hostname="old.example.com")


def stored(relay):
    return RelayServer.objects.get(pk=relay.pk)


def move(client, relay, host, **headers):
    return client.put(
        f"/relay_servers/{relay.pk}",
        {"relay_server": {"destination": {"hostname": host}}},
        **headers,
    )


# --- the admin --------------------------------------------------------------------------------


@pytest.fixture
def operator(client, db):
    UserFactory(username="operator", is_superuser=True)
    client.login(username="operator", password="pw")
    return client


def opened_version(page):
    return page.context["adminform"].form["opened_version"].value()


def test_the_admin_refuses_a_save_over_an_api_change_made_since_the_page_opened(
    operator, admin, relay
):
    url = f"/admin/relays/relayserver/{relay.pk}/change/"
    opened = operator.get(url)
    assert move(admin, relay, "new.example.com").status_code == 200  # a script, meanwhile

    page = operator.post(
        url,
        change_form(relay, max_messages_per_hour="9", opened_version=opened_version(opened)),
    )

    assert page.status_code == 200  # the form again, nothing saved
    assert stored(relay).destination_hostname == "new.example.com"
    assert stored(relay).max_messages_per_hour == relay.max_messages_per_hour  # not 9
    problems = page.context["adminform"].form.non_field_errors()
    assert problems[0].startswith(f"relay_server {relay.pk} (r) was changed since it was read")
    assert problems[1].startswith("Changed by admin via greenarrow at ")
    assert "destination_hostname is now 'new.example.com'" in problems[1]


def test_saving_again_after_the_refusal_is_a_deliberate_overwrite(operator, admin, relay):
    url = f"/admin/relays/relayserver/{relay.pk}/change/"
    opened = operator.get(url)
    move(admin, relay, "new.example.com")
    refused = operator.post(url, change_form(relay, opened_version=opened_version(opened)))

    again = operator.post(url, change_form(relay, opened_version=opened_version(refused)))

    assert again.status_code == 302
    assert stored(relay).destination_hostname == "old.example.com"


def test_an_unhindered_admin_save_goes_through_and_moves_the_version_on(operator, relay):
    url = f"/admin/relays/relayserver/{relay.pk}/change/"
    opened = operator.get(url)

    page = operator.post(
        url, change_form(relay, max_messages_per_hour="9", opened_version=opened_version(opened))
    )

    assert page.status_code == 302
    assert (stored(relay).max_messages_per_hour, stored(relay).version) == (9, 2)


# --- the GreenArrow API -----------------------------------------------------------------------


def test_a_get_answers_the_record_s_etag_and_a_put_the_new_one(admin, relay):
    got = admin.get(f"/relay_servers/{relay.pk}")
    put = move(admin, relay, "new.example.com", HTTP_IF_MATCH=got["ETag"])

    assert got["ETag"] == '"v1"'
    assert put.status_code == 200
    assert put["ETag"] == '"v2"'


def test_a_put_with_a_stale_if_match_is_412_and_changes_nothing(admin, relay, unchanged):
    move(admin, relay, "new.example.com")

    with unchanged():
        response = move(admin, relay, "other.example.com", HTTP_IF_MATCH='"v1"')

    assert response.status_code == 412
    assert response.json() == error(
        "validation_failed",
        f"relay_server {relay.pk} (r) was changed since it was read (version 1, now 2); "
        "nothing was changed",
    )


@pytest.mark.parametrize("tag", ['W/"v2"', '"2"', "v2", '"v99999999999999999999"'])
def test_a_tag_this_server_never_gives_matches_nothing(admin, relay, tag):
    move(admin, relay, "new.example.com")

    assert move(admin, relay, "x.example.com", HTTP_IF_MATCH=tag).status_code == 412


@pytest.mark.parametrize("tag", ["*", '"v7", "v2"'])
def test_any_or_a_list_naming_the_current_tag_matches(admin, relay, tag):
    move(admin, relay, "new.example.com")

    assert move(admin, relay, "x.example.com", HTTP_IF_MATCH=tag).status_code == 200


def test_without_if_match_a_put_is_as_the_vendor_s(admin, relay):
    move(admin, relay, "new.example.com")

    assert move(admin, relay, "x.example.com").status_code == 200


def test_a_delete_with_a_stale_if_match_is_refused(admin, relay):
    move(admin, relay, "new.example.com")

    response = admin.client.delete(f"/ga/api/v3/eng/relay_servers/{relay.pk}", HTTP_IF_MATCH='"v1"')

    assert response.status_code == 412
    assert RelayServer.objects.filter(pk=relay.pk).exists()
