"""Pausing delivery through IP addresses in bulk, from the admin's list, in a real browser."""

from playwright.sync_api import expect

from tests.browser.conftest import log_in

LIST = "/admin/relays/ipaddress/"


def ip_address(name, ip):
    return {"ip_address": {"name": name, "ip": ip, "hostname": f"{name}.example.com"}}


def test_the_pause_action_pauses_the_two_selected_addresses_in_the_list_and_the_api(
    page, greenarrow
):
    """Two of three addresses ticked, "Pause delivery" picked, Go: the list says both are
    paused and the third still delivering, and the GreenArrow API answers the same."""
    for name, ip in [
        ("mta-east", "192.0.2.11"),
        ("mta-west", "192.0.2.12"),
        ("mta-spare", "192.0.2.13"),
    ]:
        status, body = greenarrow.post("/ip_addresses", ip_address(name, ip))
        assert status == 200, body
    log_in(page, "admin")
    page.goto(LIST)

    def row(name):
        return page.locator("#result_list tbody tr").filter(has_text=f"{name}.example.com")

    row("mta-east").locator("input.action-select").check()
    row("mta-west").locator("input.action-select").check()
    page.locator('select[name="action"]').select_option(label="Pause delivery")
    page.get_by_role("button", name="Go").click()

    expect(page.locator(".messagelist .success")).to_have_text(
        "Paused delivery through 2 IP addresses (mta-east, mta-west)."
    )
    expect(row("mta-east").locator(".field-delivery_status")).to_have_text("Paused")
    expect(row("mta-west").locator(".field-delivery_status")).to_have_text("Paused")
    expect(row("mta-spare").locator(".field-delivery_status")).to_have_text("Delivering")

    status, listing = greenarrow.get("/ip_addresses")
    assert status == 200, listing
    paused = {}
    for item in listing["data"]["ip_addresses"]:
        status, one = greenarrow.get(f"/ip_addresses/{item['id']}")
        assert status == 200, one
        paused[item["name"]] = one["data"]["ip_address"]["delivery_paused"]
    assert paused == {"mta-east": True, "mta-west": True, "mta-spare": False}
