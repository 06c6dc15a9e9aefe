"""The relay list fits a 1,280 px wide window with the admin's sidebar open: every column is
seen without scrolling sideways (long names and hosts wrap)."""

from tests.browser.conftest import log_in
from tests.factories import IpAddressFactory, RelayServerFactory


def test_the_relay_list_fits_1280_px_with_the_sidebar_open(page, superuser):
    target = IpAddressFactory(name="ip-" + "x" * 40)
    RelayServerFactory(
        name="relay-with-a-rather-long-name-" + "n" * 30,
        destination_hostname="smtp." + "d" * 60 + ".example.com",
        source_hostname="out." + "h" * 50 + ".example.com",
        max_concurrent_connections=20,
        max_messages_per_hour=36000,
        redirect=target,
        with_auth=True,
    )
    log_in(page, "admin")
    page.goto("/admin/relays/relayserver/")
    page.evaluate("localStorage.setItem('django.admin.navSidebarIsOpen', 'true')")
    page.reload()

    assert page.locator("#nav-sidebar").is_visible()
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1] == 1280, widths
