"""The admin serves every model and keeps the same rules as the APIs."""

import pytest

from relays.models import RelayServer
from tests.factories import IpAddressFactory, RelayServerFactory, RoutingRuleFactory


# The default VirtualMTA is one setting page, not a list: tests/test_admin_default_virtual_mta.py
@pytest.mark.parametrize("model", ["relayserver", "ipaddress", "routingrule"])
def test_every_model_has_a_list_and_an_add_page(browser, model):
    RoutingRuleFactory(targets=[(IpAddressFactory(), 1)])

    assert browser.get(f"/admin/relays/{model}/").status_code == 200
    assert browser.get(f"/admin/relays/{model}/add/").status_code == 200


def test_a_routing_rule_page_shows_its_routes(browser):
    ip = IpAddressFactory(name="shown-target")
    rule = RoutingRuleFactory(targets=[(ip, 1)])

    page = browser.get(f"/admin/relays/routingrule/{rule.id}/change/")

    assert b"shown-target" in page.content


def test_the_admin_refuses_a_redirect_loop(browser):
    a = RelayServerFactory(name="a")
    b = RelayServerFactory(name="b", redirect=a)
    form = {
        "name": "a",
        "source_ip": a.source_ip,
        "source_hostname": a.source_hostname,
        "destination_hostname": a.destination_hostname,
        "destination_port": a.destination_port,
        "max_concurrent_connections": 0,
        "max_messages_per_hour": 0,
        "redirect": b.id,
    }

    page = browser.post(f"/admin/relays/relayserver/{a.id}/change/", form)

    assert page.status_code == 200  # the form again, with the error
    assert b"redirect would create a delivery loop: a -&gt; b -&gt; a" in page.content
    assert RelayServer.objects.get(id=a.id).redirect is None
