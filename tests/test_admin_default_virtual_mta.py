"""The default VirtualMTA in the admin: one setting page (no list, no add, no delete), written
through the API's service (resolved by name or id, audited, door `admin`)."""

import pytest
from django.test import Client

from relays import services
from relays.models import DefaultVirtualMta
from tests.conftest import store_entries
from tests.factories import IpAddressFactory, RelayServerFactory, UserFactory

PAGE = "/admin/relays/defaultvirtualmta/1/change/"


def test_the_list_and_add_lead_to_the_one_setting_page(browser):
    services.set_default_virtual_mta({"id": IpAddressFactory().id, "name": None})

    for url in ("/admin/relays/defaultvirtualmta/", "/admin/relays/defaultvirtualmta/add/"):
        answer = browser.get(url)
        # "Add default VirtualMTA" while one exists answered 500 before.
        assert (answer.status_code, answer["Location"]) == (302, PAGE)


def test_the_page_shows_none_before_anything_was_set(browser):
    page = browser.get(PAGE)

    assert page.status_code == 200
    assert "Current default" in page.content.decode()
    assert not DefaultVirtualMta.objects.exists()


def test_setting_it_by_name_goes_through_the_service_and_is_audited(browser):
    relay = RelayServerFactory(name="relay-a")

    answer = browser.post(PAGE, {"default": "RELAY-A"}, follow=True)

    assert answer.redirect_chain == [(PAGE, 302)]
    text = answer.content.decode()
    assert (
        f'The default VirtualMTA is now <a href="/admin/relays/relayserver/{relay.id}/change/">'
        in text
    )
    assert services.get_default_virtual_mta().id == relay.id
    entry = store_entries().get()
    assert (entry.facade, entry.actor, entry.record_type, entry.before, entry.after) == (
        "admin",
        "admin",
        "default_virtual_mta",
        {"virtual_mta_id": None},
        {"virtual_mta_id": relay.id},
    )
    assert 'value="relay-a"' in browser.get(PAGE).content.decode()


def test_it_can_be_set_by_id_and_cleared(browser):
    ip = IpAddressFactory(name="ip-a")

    browser.post(PAGE, {"default": str(ip.id)})
    assert services.get_default_virtual_mta().id == ip.id

    browser.post(PAGE, {"default": ""})
    assert services.get_default_virtual_mta() is None


def test_an_unknown_name_is_refused_at_the_field(browser, unchanged):
    services.set_default_virtual_mta({"id": IpAddressFactory(name="ip-a").id, "name": None})
    entries = store_entries().count()

    with unchanged():
        page = browser.post(PAGE, {"default": "nope"})

    assert page.status_code == 200
    assert page.context["adminform"].form.errors == {
        "default": ["virtual_mta refers to no VirtualMTA named 'nope'"]
    }
    assert store_entries().count() == entries


def test_there_is_no_delete(browser):
    services.set_default_virtual_mta({"id": IpAddressFactory().id, "name": None})

    assert (
        browser.post("/admin/relays/defaultvirtualmta/1/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert DefaultVirtualMta.objects.get().virtual_mta_id is not None


def test_its_history_is_its_audit_log(browser):
    browser.post(PAGE, {"default": IpAddressFactory(name="ip-a").name})

    page = browser.get("/admin/relays/defaultvirtualmta/1/history/").content.decode()

    assert "virtual_mta_id" in page


def test_a_view_only_user_sees_the_value_but_cannot_change_it(db):
    UserFactory(username="viewer", perms=["view_defaultvirtualmta"])
    viewer = Client()
    viewer.login(username="viewer", password="pw")
    ip = IpAddressFactory(name="ip-a")
    services.set_default_virtual_mta({"id": ip.id, "name": None})

    page = viewer.get(PAGE).content.decode()
    viewer.post(PAGE, {"default": ""})

    assert (
        f'<a href="/admin/relays/ipaddress/{ip.id}/change/">ip_address {ip.id} (ip-a)</a>' in page
    )
    assert 'name="default"' not in page
    assert services.get_default_virtual_mta().id == ip.id


@pytest.mark.parametrize("typed", ["\u00b2", "\u0661", "\u212aELVIN"])
def test_digits_and_letters_of_other_scripts_name_nothing(browser, typed):
    IpAddressFactory(name="kelvin")  # the Kelvin sign folds to "k" in str.lower()

    page = browser.post(PAGE, {"default": typed})

    assert page.status_code == 200
    assert (
        page.context["adminform"]
        .form.errors["default"][0]
        .startswith("virtual_mta refers to no VirtualMTA named ")
    )
    assert services.get_default_virtual_mta() is None
