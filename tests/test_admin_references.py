"""References in the admin can be followed: a redirect or a routing target is picked by searching
names (each shown with its type, the record itself left out, never a list of every record);
every VirtualMTA page says what uses it and where its mail really goes."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.test import Client

from relays.models import RelayServer
from tests.factories import (
    IpAddressFactory,
    RelayServerFactory,
    RoutingRuleFactory,
    UserFactory,
    add_override,
)

SEARCH = "/admin/relays/virtualmta/search/"


def search(client, term, **extra):
    query = {
        "term": term,
        "app_label": "relays",
        "model_name": "virtualmta",
        "field_name": "redirect",
        **extra,
    }
    return client.get(SEARCH, query)


def found(response):
    assert response.status_code == 200, response.status_code
    return [result["text"] for result in response.json()["results"]]


def change_page(vmta):
    kind = {"ip_address": "ipaddress", "relay_server": "relayserver"}.get(vmta.type, "routingrule")
    return f"/admin/relays/{kind}/{vmta.pk}/change/"


# --- the picker ------------------------------------------------------------------------------


def test_the_search_finds_names_of_every_type_each_with_its_type(browser):
    RelayServerFactory(name="mail-relay")
    IpAddressFactory(name="mail-ip")
    RoutingRuleFactory(name="mail-rule", targets=[(RelayServerFactory(name="other"), 1)])

    assert found(search(browser, "mail")) == [
        "mail-ip (IP address)",
        "mail-relay (relay server)",
        "mail-rule (routing rule)",
    ]


def test_the_search_leaves_out_the_record_being_edited(browser):
    me = RelayServerFactory(name="relay-me")
    RelayServerFactory(name="relay-other")

    assert found(search(browser, "relay", exclude=str(me.pk))) == ["relay-other (relay server)"]


def test_the_search_answers_twenty_at_a_time(browser):
    RelayServerFactory.create_batch(25)

    first = search(browser, "")

    assert len(found(first)) == 20
    assert first.json()["pagination"] == {"more": True}


def test_the_search_is_for_users_who_may_see_the_records(db):
    RelayServerFactory(name="secret-name")
    UserFactory(username="nobody", is_staff=True)
    UserFactory(username="viewer", is_staff=True, perms=["view_ipaddress"])
    nobody, viewer = Client(), Client()
    nobody.login(username="nobody", password="pw")
    viewer.login(username="viewer", password="pw")

    assert search(nobody, "secret").status_code == 403
    assert found(search(viewer, "secret")) == ["secret-name (relay server)"]
    assert Client().get(SEARCH, {"term": "secret"}).status_code == 302  # to the login page


@pytest.mark.parametrize("bad", ["x", "-1", "١٢", "9" * 30])
def test_a_strange_exclude_is_ignored_not_an_error(browser, bad):
    RelayServerFactory(name="relay-a")

    assert found(search(browser, "relay", exclude=bad)) == ["relay-a (relay server)"]


def test_the_redirect_field_renders_only_the_chosen_record(browser):
    target = IpAddressFactory(name="ip-target")
    relay = RelayServerFactory(name="relay-a", redirect=target)
    RelayServerFactory.create_batch(30)

    html = browser.get(change_page(relay)).content.decode()

    assert "admin-autocomplete" in html
    assert html.count("<option") < 10
    assert f'<option value="{target.pk}" selected>ip-target (IP address)</option>' in html
    assert f"{SEARCH}?exclude={relay.pk}" in html


def test_a_redirect_picked_in_the_admin_is_saved_through_the_service(browser, admin):
    target = IpAddressFactory(name="ip-target")
    relay = RelayServerFactory(name="relay-a")
    page = browser.get(change_page(relay))
    form = page.context["adminform"].form
    data = {name: form[name].value() or "" for name in form.fields if name != "clear_credentials"}

    saved = browser.post(change_page(relay), {**data, "redirect": str(target.pk)})

    assert saved.status_code == 302
    got = admin.get(f"/relay_servers/{relay.pk}").json()["data"]["relay_server"]
    assert got["redirect"] == {"type": "ip_address", "id": target.pk, "name": "ip-target"}


# --- Used by ---------------------------------------------------------------------------------


def test_used_by_lists_each_referrer_linked_with_its_attribute(browser):
    relay = RelayServerFactory(name="target")
    user = RelayServerFactory(name="user", redirect=relay)
    rule = RoutingRuleFactory(name="rule", targets=[(RelayServerFactory(name="x"), 1)])
    add_override(rule, ["example.com"], [(relay, 1)])

    html = browser.get(change_page(relay)).content.decode()

    assert (
        f'<a href="{change_page(user)}">user</a> (relay server) as its <code>redirect</code>'
        in html
    )
    assert (
        f'<a href="{change_page(rule)}">rule</a> (routing rule) as its '
        "<code>domain_overrides[0].deliver_through[0].virtual_mta</code>"
    ) in html


def test_used_by_says_when_nothing_uses_the_record(browser):
    relay = RelayServerFactory()

    assert b"Nothing refers to it: it can be deleted." in browser.get(change_page(relay)).content


def test_used_by_names_twenty_and_counts_the_rest(browser):
    relay = RelayServerFactory(name="hub")
    RelayServerFactory.create_batch(23, redirect=relay)

    html = browser.get(change_page(relay)).content.decode()

    assert html.count("as its <code>redirect</code>") == 20
    assert "and 3 more" in html


# --- Effective delivery ----------------------------------------------------------------------


def test_effective_delivery_follows_redirects_and_routing_rules_and_marks_paused_ips(browser):
    paused = IpAddressFactory(name="ip-paused", delivery_paused=True)
    final = RelayServerFactory(name="final")
    via = RelayServerFactory(name="via", redirect=paused)
    rule = RoutingRuleFactory(name="rule", targets=[(final, 3), (via, 1)])
    relay = RelayServerFactory(name="relay", redirect=rule)

    html = browser.get(change_page(relay)).content.decode()

    assert (
        f'<a href="{change_page(final)}">final</a> (relay server)</td><td>75.0%</td><td>delivering'
        in html
    )
    assert (
        f'<a href="{change_page(paused)}">ip-paused</a> (IP address)</td><td>25.0%</td><td>paused: mail waits'
        in html
    )


def test_a_routing_rule_shows_its_paths_per_route(browser):
    a, b = RelayServerFactory(name="a"), RelayServerFactory(name="b")
    rule = RoutingRuleFactory(name="rule", targets=[(a, 1)])
    add_override(rule, ["*.example.com"], [(b, 1)])

    html = browser.get(change_page(rule)).content.decode()

    assert "Any other domain (the default route)" in html
    assert "Mail to mail.example.com (domain override 1)" in html


# --- fast at any size ------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["relayserver", "ipaddress", "routingrule"])
def test_a_list_page_runs_the_same_queries_for_5_rows_as_for_50(
    browser, model, django_assert_max_num_queries
):
    def fill(n):
        for _ in range(n):
            target = RelayServerFactory(redirect=IpAddressFactory())
            if model == "routingrule":
                RoutingRuleFactory(targets=[(target, 1), (RelayServerFactory(), 2)])

    def queries():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert browser.get(f"/admin/relays/{model}/").status_code == 200
        return len(captured)

    fill(5)
    few = queries()
    fill(45)

    assert queries() == few
    # Pinned: session and user, the counts, the page (with its redirect targets joined),
    # the filters' and actions' reads; a change here must be a choice.
    assert few <= 12


@pytest.mark.parametrize("model", [RelayServer, "ip", "rule"])
def test_a_change_page_runs_a_fixed_number_of_queries(browser, model, django_assert_num_queries):
    target = RelayServerFactory(name="t")
    if model is RelayServer:
        record = RelayServerFactory(redirect=target)
        expected = 12
    elif model == "ip":
        record = IpAddressFactory(redirect=target)
        expected = 11
    else:
        record = RoutingRuleFactory(targets=[(target, 1)])
        add_override(record, ["example.com"], [(target, 1)])
        expected = 21
    # Referrers are named from one query, not one each. "Effective delivery" reads each node
    # of the delivery graph once (bounded by the hop and target limits): here 2 or 3 of them.
    RelayServerFactory.create_batch(20, redirect=record)
    ContentType.objects.clear_cache()  # as in a fresh process, whatever ran before

    with django_assert_num_queries(expected):
        assert browser.get(change_page(record)).status_code == 200


def test_a_routing_rules_page_reads_its_delivery_graph_once_whatever_its_overrides(browser):
    """Each route shown in "Effective delivery" walks the graph, and the walks share what they
    read (relays.resolution.Store): five overrides cost what one costs."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    hub = RelayServerFactory(redirect=IpAddressFactory())

    def queries(overrides):
        rule = RoutingRuleFactory(targets=[(hub, 1)])
        for n in range(overrides):
            add_override(rule, [f"d{n}.example.com"], [(hub, 1), (RelayServerFactory(), 1)])
        ContentType.objects.clear_cache()
        with CaptureQueriesContext(connection) as captured:
            assert browser.get(change_page(rule)).status_code == 200
        return len(captured)

    one = queries(1)
    # Four more overrides add one new target each (one query each), nothing per route.
    assert queries(5) == one + 4
