"""A staff user who may only view relay servers sees them in the admin, with no control to change
them, and a change forged past the page is refused."""

import pytest
from playwright.sync_api import expect

from relays.models import RelayServer
from tests.browser.conftest import log_in
from tests.factories import RelayServerFactory, UserFactory

LIST = "/admin/relays/relayserver/"
FORM_CONTROLS = "#content input:not([type=hidden]), #content select, #content textarea"
SAVE_BUTTONS = '[name="_save"], [name="_continue"], [name="_addanother"], [name="_saveasnew"]'

# A same-origin POST made from inside the logged-in page, as a script in it (or a user in the
# browser's console) would: form-encoded, with the session cookie and a valid CSRF token.
FORGED_POST = """async ([url, fields]) => {
    const response = await fetch(url, {
        method: "POST",
        body: new URLSearchParams(fields),
        credentials: "same-origin",
        redirect: "manual",
    });
    return {status: response.status, body: await response.text()};
}"""


@pytest.fixture
def viewer(transactional_db):
    return UserFactory(username="viewer", perms=["view_relayserver"])


def test_a_view_only_user_sees_relays_without_add_save_or_delete_controls(page, viewer):
    """The list shows the relays, with no Add button and no bulk actions; a relay's page shows
    its values read-only, with no Save or Delete."""
    relay = RelayServerFactory(name="relay-seen", destination_port=2525)
    log_in(page, "viewer")

    page.goto(LIST)
    expect(page.locator("#result_list .field-name")).to_have_text(["relay-seen"])
    expect(page.locator("a.addlink")).to_have_count(0)
    expect(page.get_by_text("Add relay server")).to_have_count(0)
    expect(page.locator('select[name="action"]')).to_have_count(0)

    page.locator("#result_list").get_by_role("link", name="relay-seen").click()
    expect(page.locator("#content h1")).to_have_text("View relay server")
    expect(page.locator(".field-destination_port .readonly")).to_have_text("2525")
    expect(page.locator(FORM_CONTROLS)).to_have_count(0)
    expect(page.locator(SAVE_BUTTONS)).to_have_count(0)
    expect(page.locator("a.deletelink")).to_have_count(0)
    assert page.url.endswith(f"/admin/relays/relayserver/{relay.pk}/change/")


def test_a_forged_change_from_a_view_only_user_is_forbidden_and_changes_nothing(page, viewer):
    """A POST to the relay's change URL, sent from the logged-in page with the page's own CSRF
    token (so it passes the CSRF check), is answered 403 and the relay keeps every value."""
    relay = RelayServerFactory(name="relay-kept", destination_port=2525)
    before = RelayServer.objects.filter(pk=relay.pk).values().get()
    log_in(page, "viewer")
    url = f"/admin/relays/relayserver/{relay.pk}/change/"
    page.goto(url)
    token = page.locator('input[name="csrfmiddlewaretoken"]').first.input_value()
    assert token

    answer = page.evaluate(
        FORGED_POST,
        [
            url,
            {
                "csrfmiddlewaretoken": token,
                "name": "relay-hijacked",
                "source_ip": "192.0.2.66",
                "source_hostname": "evil.example.com",
                "destination_hostname": "smtp.evil.example.com",
                "destination_port": "25",
                "destination_username": "",
                "destination_password": "",
                "max_concurrent_connections": "0",
                "max_messages_per_hour": "0",
                "redirect": "",
                "secret_arn": "",
                "_save": "Save",
            },
        ],
    )

    assert answer["status"] == 403, answer["body"][:500]
    assert "CSRF" not in answer["body"]  # refused for the permission, not for the token
    assert RelayServer.objects.filter(pk=relay.pk).values().get() == before
