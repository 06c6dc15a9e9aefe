"""A relay server that another one redirects to cannot be deleted in the admin: the refusal names
the referrer, linked to its page."""

import re

from playwright.sync_api import expect

from relays.models import RelayServer
from tests.browser.conftest import log_in


def relay(name, ip, **extra):
    return {
        "relay_server": {
            "name": name,
            "source_ip": {"ip": ip, "hostname": f"{name}.out.example.com"},
            "destination": {"hostname": "smtp.example.com", "port": 587},
            "throttle_limits": {"max_concurrent_connections": 0, "max_messages_per_hour": 0},
            **extra,
        }
    }


def test_the_delete_page_of_a_redirect_target_names_the_referrer_with_a_link_to_it(
    page, greenarrow
):
    """B redirects to A (set up through the GreenArrow API). A's delete page refuses: it names
    B as A's referrer "as its redirect", linked to B's change page, and offers no confirmation;
    following the link opens B. A is still there."""
    status, a = greenarrow.post("/relay_servers", relay("relay-a", "192.0.2.1"))
    assert status == 200, a
    status, b = greenarrow.post(
        "/relay_servers", relay("relay-b", "192.0.2.2", redirect={"name": "relay-a"})
    )
    assert status == 200, b
    a_id, b_id = a["data"]["relay_server"]["id"], b["data"]["relay_server"]["id"]
    log_in(page, "admin")

    page.goto(f"/admin/relays/relayserver/{a_id}/delete/")

    content = page.locator("#content")
    expect(content).to_contain_text(
        f"relay_server {a_id} (relay-a) is used by relay_server {b_id} (relay-b) as its redirect"
    )
    link = content.get_by_role("link", name=f"relay_server {b_id} (relay-b)")
    expect(link).to_have_attribute("href", f"/admin/relays/relayserver/{b_id}/change/")
    expect(page.locator('#content input[type="submit"]')).to_have_count(0)  # no "Yes, I'm sure"

    link.click()

    expect(page).to_have_url(re.compile(rf"/admin/relays/relayserver/{b_id}/change/$"))
    expect(page.locator("#id_name")).to_have_value("relay-b")
    assert RelayServer.objects.filter(pk=a_id).exists()
