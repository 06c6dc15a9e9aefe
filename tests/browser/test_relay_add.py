"""Adding a relay server through the admin's Add form, in a real browser: the API's rules at the
field they concern, then the saved relay found in the list and read back through the API."""

import re

from playwright.sync_api import expect

from relays.models import RelayServer
from tests.browser.conftest import log_in
from tests.factories import RelayServerFactory

ADD = "/admin/relays/relayserver/add/"
LIST = "/admin/relays/relayserver/"


def fill_relay_form(page, port):
    page.locator("#id_name").fill("relay-browser")
    page.locator("#id_source_ip").fill("192.0.2.44")
    page.locator("#id_source_hostname").fill("out-44.example.com")
    page.locator("#id_destination_hostname").fill("smtp.example.net")
    page.locator("#id_destination_port").fill(port)
    page.locator("#id_destination_username").fill("relay-user")
    page.locator("#id_destination_password").fill("relay-secret")
    page.locator("#id_max_concurrent_connections").fill("4")
    page.locator("#id_max_messages_per_hour").fill("3600")


def test_a_bad_port_is_refused_at_its_field_then_the_fixed_relay_is_saved_listed_and_served(
    page, greenarrow
):
    """Port -5 comes back with the API's message inside the port's own row, and nothing is
    saved. Port 587 saves the relay: the list finds it by its source IP (and only it), and the
    GreenArrow API serves it with that port."""
    RelayServerFactory(name="other-relay", source_ip="192.0.2.99")
    log_in(page, "admin")
    page.goto(ADD)

    fill_relay_form(page, port="-5")
    page.get_by_role("button", name="Save", exact=True).click()

    port_row = page.locator(".form-row.field-destination_port")
    expect(port_row.locator(".errorlist")).to_have_text("must be an integer from 1 to 65535")
    # Nothing above the form; besides the port, only the password's row, asking for it again.
    expect(page.locator(".errorlist")).to_have_count(2)
    expect(page.locator(".form-row.field-destination_password .errorlist")).to_have_text(
        "Type the password again: it is not sent back with a form that has errors."
    )
    expect(page.locator(".errornote")).to_be_visible()
    assert not RelayServer.objects.filter(name="relay-browser").exists()

    # The page kept what was typed, except the write-only password.
    expect(page.locator("#id_name")).to_have_value("relay-browser")
    expect(page.locator("#id_destination_password")).to_have_value("")
    page.locator("#id_destination_password").fill("relay-secret")
    page.locator("#id_destination_port").fill("587")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page).to_have_url(re.compile(rf"{LIST}$"))
    expect(page.locator(".messagelist .success")).to_contain_text("relay-browser")

    page.locator("#searchbar").fill("192.0.2.44")
    page.locator("#searchbar").press("Enter")
    expect(page).to_have_url(re.compile(r"\?q=192\.0\.2\.44$"))
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first.locator(".field-name")).to_have_text("relay-browser")
    expect(rows.first).to_contain_text("smtp.example.net:587")
    expect(rows.first).to_contain_text("192.0.2.44 / out-44.example.com")

    status, listing = greenarrow.get("/relay_servers")
    assert status == 200, listing
    [relay_id] = [r["id"] for r in listing["data"]["relay_servers"] if r["name"] == "relay-browser"]
    status, body = greenarrow.get(f"/relay_servers/{relay_id}")
    assert status == 200, body
    served = body["data"]["relay_server"]
    assert served["destination"]["port"] == 587
    assert served["destination"]["hostname"] == "smtp.example.net"
    assert served["source_ip"] == {"ip": "192.0.2.44", "hostname": "out-44.example.com"}
    assert served["throttle_limits"] == {
        "max_concurrent_connections": 4,
        "max_messages_per_hour": 3600,
    }
