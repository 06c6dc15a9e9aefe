"""IP addresses in the admin: delivery shown as a status, and paused or resumed in bulk through
the API's update service (audited, door `admin`)."""

import pytest
from django.test import Client

from relays.models import IpAddress
from tests.conftest import store_entries
from tests.factories import IpAddressFactory, UserFactory

LIST = "/admin/relays/ipaddress/"


def test_the_list_shows_delivery_as_words_not_icons(browser):
    IpAddressFactory(name="normal-ip")
    IpAddressFactory(name="paused-ip", delivery_paused=True)

    page = browser.get(LIST).content.decode()

    assert '<td class="field-delivery_status">Delivering</td>' in page
    assert '<td class="field-delivery_status">Paused</td>' in page
    assert "icon-yes.svg" not in page and "icon-no.svg" not in page


@pytest.mark.parametrize(
    ("choice", "shown", "hidden"),
    [("paused", "paused-ip", "normal-ip"), ("delivering", "normal-ip", "paused-ip")],
)
def test_the_list_filters_by_delivery(browser, choice, shown, hidden):
    IpAddressFactory(name="normal-ip")
    IpAddressFactory(name="paused-ip", delivery_paused=True)

    page = browser.get(LIST, {"delivery": choice}).content.decode()

    assert shown in page and hidden not in page


def bulk(client, action, *ips):
    return client.post(
        LIST, {"action": action, "_selected_action": [ip.pk for ip in ips]}, follow=True
    )


def test_pause_delivery_pauses_each_selected_ip_through_the_service(browser):
    a, b = IpAddressFactory(name="ip-a"), IpAddressFactory(name="ip-b")
    already = IpAddressFactory(name="ip-c", delivery_paused=True)
    untouched = IpAddressFactory(name="ip-d")

    page = bulk(browser, "pause_delivery", a, b, already)

    assert page.status_code == 200
    assert (
        "Paused delivery through 2 IP addresses (ip-a, ip-b); 1 IP address was already paused."
        in (page.content.decode())
    )
    paused = set(IpAddress.objects.filter(delivery_paused=True).values_list("name", flat=True))
    assert paused == {"ip-a", "ip-b", "ip-c"}
    assert untouched.pk not in IpAddress.objects.filter(delivery_paused=True).values_list(
        "pk", flat=True
    )
    entries = store_entries().filter(record_type="ip_address").order_by("record_id")
    assert [(e.record_name, e.facade, e.actor, e.action) for e in entries] == [
        ("ip-a", "admin", "admin", "update"),
        ("ip-b", "admin", "admin", "update"),
    ]
    assert entries[0].before["delivery_paused"] is False
    assert entries[0].after["delivery_paused"] is True


def test_resume_delivery_resumes_each_selected_ip(browser):
    a = IpAddressFactory(name="ip-a", delivery_paused=True)
    b = IpAddressFactory(name="ip-b", delivery_paused=True)

    page = bulk(browser, "resume_delivery", a, b)

    assert "Resumed delivery through 2 IP addresses (ip-a, ip-b)." in page.content.decode()
    assert not IpAddress.objects.filter(delivery_paused=True).exists()
    assert store_entries().filter(record_type="ip_address", facade="admin").count() == 2


def logged_in(username, perms):
    UserFactory(username=username, perms=perms)
    client = Client()
    client.login(username=username, password="pw")
    return client


def test_the_actions_need_the_change_permission(db):
    editor = logged_in("editor", ["view_ipaddress", "change_ipaddress"])
    viewer = logged_in("viewer", ["view_ipaddress"])
    ip = IpAddressFactory(name="ip-a")

    assert (
        '<option value="pause_delivery">Pause delivery</option>'
        in editor.get(LIST).content.decode()
    )
    assert "pause_delivery" not in viewer.get(LIST).content.decode()
    bulk(viewer, "pause_delivery", ip)

    assert IpAddress.objects.get(pk=ip.pk).delivery_paused is False
    assert not store_entries().exists()
