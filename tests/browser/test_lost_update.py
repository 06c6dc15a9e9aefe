"""The admin never silently reverts a script's work, in a real browser: a relay's page is open,
a script changes the destination through the GreenArrow API, the operator changes only "Max
messages per hour" and saves: the save is refused, the page says who changed what, and the
script's destination stays. Saving again, having seen it, is a deliberate overwrite."""

import re

from playwright.sync_api import expect

from relays.models import RelayServer
from tests.browser.conftest import log_in
from tests.factories import RelayServerFactory


def test_a_save_over_a_script_s_change_is_refused_and_says_what_changed(page, greenarrow):
    relay = RelayServerFactory(name="relay-lost", destination_hostname="old.example.com")
    log_in(page, "admin")
    page.goto(f"/admin/relays/relayserver/{relay.pk}/change/")

    status, _ = greenarrow.call(
        "PUT",
        f"/relay_servers/{relay.pk}",
        {"relay_server": {"destination": {"hostname": "new.example.com"}}},
    )
    assert status == 200
    page.locator("#id_max_messages_per_hour").fill("9")
    page.get_by_role("button", name="Save", exact=True).click()

    errors = page.locator(".errornote, ul.errorlist.nonfield")
    expect(errors.first).to_be_visible()
    expect(page.locator("ul.errorlist.nonfield")).to_contain_text("was changed since it was read")
    expect(page.locator("ul.errorlist.nonfield")).to_contain_text(
        "destination_hostname is now 'new.example.com'"
    )
    stored = RelayServer.objects.get(pk=relay.pk)
    assert (stored.destination_hostname, stored.max_messages_per_hour) == (
        "new.example.com",
        relay.max_messages_per_hour,
    )

    # The form still holds what the operator typed (the old destination among it): saving
    # again, after reading the message, overwrites on purpose.
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page).to_have_url(re.compile(r"/admin/relays/relayserver/$"))
    assert RelayServer.objects.get(pk=relay.pk).max_messages_per_hour == 9
