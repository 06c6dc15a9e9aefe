"""The admin's branding and home page: "RelayAPI", and an overview of the store."""

from django.test import Client

from relays import services
from tests.factories import IpAddressFactory, RelayServerFactory, RoutingRuleFactory, UserFactory


def test_the_admin_is_branded_relayapi_and_view_site_leads_home(browser):
    page = browser.get("/admin/").content.decode()

    assert "<title>RelayAPI administration | RelayAPI</title>" in page
    assert '<a href="/admin/">RelayAPI</a>' in page
    assert "Django administration" not in page
    assert '<a href="/">View site</a>' in page


def overview(client):
    return dict(
        (label, str(value))
        for label, value, _ in client.get("/admin/").context["relayapi_overview"]
    )


def test_the_home_page_shows_counts_paused_ips_default_and_quota(browser, settings):
    settings.RELAYAPI_MAX_RELAYS = 40
    relay = RelayServerFactory(name="relay-a")
    RelayServerFactory()
    IpAddressFactory(delivery_paused=True)
    IpAddressFactory(delivery_paused=True)
    ip = IpAddressFactory()
    RoutingRuleFactory(targets=[(ip, 1)])
    services.set_default_virtual_mta({"id": relay.id, "name": None})

    assert overview(browser) == {
        "Relay servers": "2",
        "IP addresses": "3",
        "Routing rules": "1",
        "Paused IP addresses": "2",
        "Default VirtualMTA": f'<a href="/admin/relays/relayserver/{relay.id}/change/">relay_server {relay.id} (relay-a)</a>',
        "Relay-server quota": "2 of 40 relay servers",
    }
    page = browser.get("/admin/").content.decode()
    assert '<a href="/admin/relays/ipaddress/?delivery=paused">Paused IP addresses</a>' in page
    assert "2 of 40 relay servers" in page


def test_without_a_quota_or_a_default_the_home_page_says_so(browser, settings):
    settings.RELAYAPI_MAX_RELAYS = None
    RelayServerFactory()

    shown = overview(browser)

    assert shown["Relay-server quota"] == "1 relay servers, no limit"
    assert shown["Default VirtualMTA"] == "none"


def test_a_user_sees_only_the_figures_of_what_they_may_view(db):
    UserFactory(username="ips-only", perms=["view_ipaddress"])
    client = Client()
    client.login(username="ips-only", password="pw")
    IpAddressFactory(delivery_paused=True)

    assert overview(client) == {"IP addresses": "1", "Paused IP addresses": "1"}
