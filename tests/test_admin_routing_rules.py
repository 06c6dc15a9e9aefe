"""Routing rules are edited in the admin: the default route and the domain overrides (domains,
randomization, targets with weights and shares), added, removed and reordered, saved through the
same service as the API's PUT, with the API's messages where they belong. Nothing is saved when
anything is refused."""

import pytest
from django import forms

from relays.admin.routing_rules import page_starts
from relays.models import AuditEntry, DeliverThrough, DomainOverride, OverrideDomain, RoutingRule
from tests.factories import RelayServerFactory, RoutingRuleFactory, UserFactory, add_override

ADD = "/admin/relays/routingrule/add/"


def change_page(rule):
    return f"/admin/relays/routingrule/{rule.pk}/change/"


def submitted(page, **changes):
    """What a browser sends back for the page as shown (every field's value), with `changes`."""
    editor = page.context["editor"]
    forms_shown = [editor.form, *([editor.window] if editor.window is not None else [])]
    for formset in [editor.default, editor.overrides, *editor.overrides.routes]:
        forms_shown += [formset.management_form, *formset.forms]
    data = {}
    for form in forms_shown:
        for field in form:
            value = field.value()
            if isinstance(field.field, forms.BooleanField):
                if value:
                    data[field.html_name] = "on"
            else:
                data[field.html_name] = "" if value is None else str(value)
    data.update(changes)
    return {key: value for key, value in data.items() if value is not None}


def routes_through_api(admin, rule_id):
    rule = admin.get(f"/routing_rules/{rule_id}").json()["data"]["routing_rule"]
    targets = [
        (t["virtual_mta"]["name"], t["portion_of_mail"]) for t in rule["default"]["deliver_through"]
    ]
    overrides = [
        (
            o["id"],
            o["domains"],
            o["randomization_type"],
            [(t["virtual_mta"]["name"], t["portion_of_mail"]) for t in o["deliver_through"]],
        )
        for o in rule["domain_overrides"]
    ]
    return rule["default"]["randomization_type"], targets, overrides


@pytest.fixture
def relays(db):
    return [RelayServerFactory(name=name) for name in ("postmark-01", "mailgun-01", "ses-01")]


@pytest.fixture
def rule(relays):
    """rule-a: the default route 3:1 over postmark-01 and mailgun-01, and two overrides."""
    postmark, mailgun, ses = relays
    rule = RoutingRuleFactory(name="rule-a", targets=[(postmark, 3), (mailgun, 1)])
    add_override(rule, ["example.com", "[*.]example.org"], [(ses, 1)])
    add_override(rule, ["*.example.net"], [(mailgun, 1)], "message_constant")
    return rule


# --- adding --------------------------------------------------------------------------------


def test_a_rule_is_added_with_its_default_route(browser, admin, relays):
    postmark, mailgun, _ = relays
    page = browser.get(ADD)

    saved = browser.post(
        ADD,
        submitted(
            page,
            name="rule-new",
            default_randomization_type="message_constant",
            **{
                "default-0-virtual_mta": str(postmark.pk),
                "default-0-portion_of_mail": "70",
                "default-1-virtual_mta": str(mailgun.pk),
                "default-1-portion_of_mail": "30",
            },
        ),
    )

    assert saved.status_code == 302
    rule = RoutingRule.objects.get(name="rule-new")
    assert routes_through_api(admin, rule.pk) == (
        "message_constant",
        [("postmark-01", 70), ("mailgun-01", 30)],
        [],
    )
    entry = AuditEntry.objects.get(record_type="routing_rule")
    assert (entry.facade, entry.action, entry.actor) == ("admin", "create", "admin")


def test_a_rule_without_a_target_is_refused_and_nothing_is_saved(browser, relays):
    page = browser.get(ADD)

    refused = browser.post(ADD, submitted(page, name="rule-new"))

    assert refused.status_code == 200
    assert list(refused.context["editor"].default.non_form_errors()) == [
        "default.deliver_through must not be empty"
    ]
    assert b"default.deliver_through must not be empty" in refused.content
    assert not RoutingRule.objects.exists()


def test_the_api_s_name_rule_is_shown_at_the_name(browser, relays):
    page = browser.get(ADD)

    refused = browser.post(
        ADD,
        submitted(
            page,
            name="POSTMARK-01",
            **{"default-0-virtual_mta": str(relays[0].pk), "default-0-portion_of_mail": "1"},
        ),
    )

    message = refused.context["editor"].form.errors["name"][0]
    assert message.startswith("name 'POSTMARK-01' is already used by relay_server ")
    assert not RoutingRule.objects.exists()


# --- the page ------------------------------------------------------------------------------


def test_the_page_shows_the_overrides_and_each_target_s_share(browser, rule):
    page = browser.get(change_page(rule))

    editor = page.context["editor"]
    assert [share for _, share in editor.default.rows()][:2] == ["75.0%", "25.0%"]
    assert [form["domains"].value() for form in editor.overrides] == [
        "example.com\n[*.]example.org",
        "*.example.net",
    ]
    html = page.content.decode()
    assert "75.0%" in html and "[*.]example.org" in html


def test_targets_are_picked_by_search_and_the_page_never_lists_every_record(browser, rule):
    RelayServerFactory.create_batch(30)

    page = browser.get(change_page(rule))

    html = page.content.decode()
    assert "admin-autocomplete" in html
    # Only the selected targets are rendered as options, each with its type.
    assert html.count("<option") < 20
    assert "postmark-01 (relay server)" in html


# --- editing -------------------------------------------------------------------------------


def test_overrides_and_targets_are_edited_and_read_back_through_the_api(
    browser, admin, rule, relays
):
    _, mailgun, _ = relays
    first_id, second_id = [o.id for o in rule.domain_overrides.all()]
    page = browser.get(change_page(rule))

    saved = browser.post(
        change_page(rule),
        submitted(
            page,
            **{
                # The first override: other domains, a second target, moved after the second.
                "overrides-0-domains": "example.com, shop.example.com",
                "overrides-0-ORDER": "3",
                "overrides-0-targets-1-virtual_mta": str(mailgun.pk),
                "overrides-0-targets-1-portion_of_mail": "2",
                # The default route loses mailgun-01.
                "default-1-DELETE": "on",
            },
        ),
    )

    assert saved.status_code == 302, saved.context and saved.context["editor"].form.errors
    _, default, overrides = routes_through_api(admin, rule.pk)
    assert default == [("postmark-01", 3)]
    assert overrides == [
        (second_id, ["*.example.net"], "message_constant", [("mailgun-01", 1)]),
        (
            first_id,
            ["example.com", "shop.example.com"],
            "random",
            [("ses-01", 1), ("mailgun-01", 2)],
        ),
    ]


def test_an_override_is_added_then_filled_in_and_an_unchanged_one_keeps_its_id(
    browser, admin, rule
):
    ids = [o.id for o in rule.domain_overrides.all()]
    page = browser.get(change_page(rule))

    grown = browser.post(change_page(rule), submitted(page, _add_override="1"))
    saved = browser.post(
        change_page(rule),
        submitted(
            grown,
            **{
                "overrides-2-domains": "new.example",
                "overrides-2-randomization_type": "random",
                "overrides-2-targets-0-virtual_mta": str(
                    RoutingRule.objects.get(pk=rule.pk).default_deliver_through[0].virtual_mta_id
                ),
                "overrides-2-targets-0-portion_of_mail": "5",
            },
        ),
    )

    assert grown.status_code == 200
    assert len(grown.context["editor"].overrides.forms) == 3
    assert not grown.context["editor"].form.errors  # growing the page checks nothing
    assert b"errornote" not in grown.content
    assert saved.status_code == 302
    _, _, overrides = routes_through_api(admin, rule.pk)
    assert [o[0] for o in overrides][:2] == ids
    assert overrides[2][1:] == (["new.example"], "random", [("postmark-01", 5)])


def test_more_target_rows_are_added_to_the_route_asked_for(browser, rule):
    page = browser.get(change_page(rule))

    grown = browser.post(change_page(rule), submitted(page, _add_targets="overrides-1-targets"))

    routes = grown.context["editor"].overrides.routes
    assert len(routes[1].forms) == len(page.context["editor"].overrides.routes[1].forms) + 3
    assert len(routes[0].forms) == len(page.context["editor"].overrides.routes[0].forms)


def test_an_override_is_removed(browser, admin, rule):
    page = browser.get(change_page(rule))

    browser.post(change_page(rule), submitted(page, **{"overrides-0-DELETE": "on"}))

    _, _, overrides = routes_through_api(admin, rule.pk)
    assert [o[1] for o in overrides] == [["*.example.net"]]


# --- refusals: the API's messages, where they belong, nothing saved -----------------------


def test_a_bad_domain_is_refused_at_the_domains_field(browser, admin, rule):
    before = routes_through_api(admin, rule.pk)
    page = browser.get(change_page(rule))

    refused = browser.post(
        change_page(rule), submitted(page, **{"overrides-1-domains": "ok.example\nbad_domain!"})
    )

    errors = refused.context["editor"].overrides.forms[1].errors["domains"]
    assert errors[0].startswith("bad_domain!: must be a domain name")
    assert routes_through_api(admin, rule.pk) == before


def test_a_domain_listed_twice_is_refused_with_the_api_s_message(browser, admin, rule):
    before = routes_through_api(admin, rule.pk)
    page = browser.get(change_page(rule))

    refused = browser.post(
        change_page(rule), submitted(page, **{"overrides-1-domains": "EXAMPLE.com"})
    )

    assert refused.context["editor"].overrides.forms[1].errors["domains"] == [
        "domain_overrides[1].domains[0] EXAMPLE.com is already listed in domain_overrides[0]"
    ]
    assert routes_through_api(admin, rule.pk) == before


def test_a_loop_is_refused_at_the_route_that_closes_it(browser, admin, rule):
    relay = RelayServerFactory(name="back", redirect=rule)
    before = routes_through_api(admin, rule.pk)
    page = browser.get(change_page(rule))

    refused = browser.post(
        change_page(rule),
        submitted(
            page,
            **{"default-2-virtual_mta": str(relay.pk), "default-2-portion_of_mail": "1"},
        ),
    )

    assert list(refused.context["editor"].default.non_form_errors()) == [
        "default.deliver_through would create a delivery loop: rule-a -> back -> rule-a"
    ]
    assert routes_through_api(admin, rule.pk) == before


def test_a_portion_out_of_range_is_refused_at_the_field(browser, admin, rule):
    page = browser.get(change_page(rule))

    refused = browser.post(change_page(rule), submitted(page, **{"default-0-portion_of_mail": "0"}))

    assert refused.context["editor"].default.forms[0].errors["portion_of_mail"] == [
        "must be a number greater than 0 and at most 1000000"
    ]


def test_a_blank_added_override_is_an_error_not_silently_dropped(browser, rule):
    page = browser.get(change_page(rule))
    grown = browser.post(change_page(rule), submitted(page, _add_override="1"))

    refused = browser.post(
        change_page(rule),
        submitted(grown, **{"overrides-2-targets-0-portion_of_mail": "1"}),
    )

    assert refused.status_code == 200
    assert "domains" in refused.context["editor"].overrides.forms[2].errors
    assert rule.domain_overrides.count() == 2


def test_a_forged_form_count_is_refused_not_a_500(browser, rule):
    page = browser.get(change_page(rule))

    refused = browser.post(change_page(rule), submitted(page, **{"default-TOTAL_FORMS": "100000"}))

    assert refused.status_code == 200
    assert refused.context["editor"].default.non_form_errors()


# --- who may do what ------------------------------------------------------------------------


def test_a_view_only_user_sees_the_routes_without_controls_and_cannot_post(client, rule):
    UserFactory(username="viewer", is_staff=True, perms=["view_routingrule"])
    client.login(username="viewer", password="pw")

    page = client.get(change_page(rule))
    forged = client.post(change_page(rule), submitted(page, name="renamed"))

    assert page.status_code == 200
    html = page.content.decode()
    assert 'name="_save"' not in html and "Add a domain override" not in html
    assert "disabled" in html
    assert forged.status_code == 403
    assert RoutingRule.objects.get(pk=rule.pk).name == "rule-a"


def test_the_page_shows_what_uses_the_rule_and_where_its_mail_goes(browser, rule):
    user = RelayServerFactory(name="user", redirect=rule)

    page = browser.get(change_page(rule))

    html = page.content.decode()
    assert f'href="/admin/relays/relayserver/{user.pk}/change/">user</a>' in html
    panels = dict(page.context["panels"])
    assert "75.0%" in panels["Effective delivery"]
    assert "Mail to example.com" in panels["Effective delivery"]


# --- large rules: a page of overrides at a time ---------------------------------------------


def make_overrides(rule, count, targets):
    """Append `count` overrides (`d{n}.example`, each over every one of `targets` with portion
    1), written in bulk as the service writes them."""
    start = rule.domain_overrides.count()
    overrides = DomainOverride.objects.bulk_create(
        DomainOverride(rule=rule, position=start + n, randomization_type="random")
        for n in range(count)
    )
    OverrideDomain.objects.bulk_create(
        OverrideDomain(override=o, rule=rule, position=0, domain=f"d{o.position}.example")
        for o in overrides
    )
    DeliverThrough.objects.bulk_create(
        DeliverThrough(rule=rule, override=o, position=j, virtual_mta=t, portion_of_mail=1)
        for o in overrides
        for j, t in enumerate(targets)
    )


@pytest.fixture
def long_rule(relays):
    """rule-long: a default route and 45 overrides d0.example ... d44.example (three pages)."""
    rule = RoutingRuleFactory(name="rule-long", targets=[(relays[0], 1)])
    make_overrides(rule, 45, [relays[1]])
    return rule


@pytest.mark.parametrize(
    ("sizes", "starts"),
    [
        ([], [0]),
        ([1] * 20, [0]),
        ([1] * 45, [0, 20, 40]),
        ([20] * 1000, list(range(0, 1000, 20))),
        # At most 400 targets a page, unless one override alone has more.
        ([100] * 9, [0, 4, 8]),
        ([1, 399, 1, 100, 100], [0, 2]),
    ],
)
def test_a_page_holds_at_most_20_overrides_and_400_targets(sizes, starts):
    assert page_starts(sizes) == starts


def test_a_rule_of_1000_overrides_of_20_targets_is_shown_a_page_at_a_time(
    browser, django_assert_max_num_queries
):
    """The finding: shown whole, this rule was a page of 27 MB taking 25 s."""
    targets = RelayServerFactory.create_batch(20)
    rule = RoutingRuleFactory(name="rule-big", targets=[(targets[0], 1)])
    make_overrides(rule, 1000, targets)

    with django_assert_max_num_queries(45):
        first = browser.get(change_page(rule))
    last = browser.get(f"{change_page(rule)}?overrides_page=50")

    assert first.status_code == last.status_code == 200
    assert len(first.content) < 600_000
    editor = first.context["editor"]
    assert (editor.page, editor.pages, editor.shown_range) == (1, 50, (1, 20))
    assert [form["domains"].value() for form in editor.overrides][:2] == [
        "d0.example",
        "d1.example",
    ]
    assert "Domain overrides 1\u201320 of 1000" in first.content.decode()
    assert last.context["editor"].shown_range == (981, 1000)
    assert "Domain override 1000 <small>" in last.content.decode()


def test_a_save_from_a_page_writes_its_overrides_and_keeps_every_other(browser, admin, long_rule):
    before = routes_through_api(admin, long_rule.pk)[2]
    url = f"{change_page(long_rule)}?overrides_page=2"
    page = browser.get(url)

    saved = browser.post(
        url,
        submitted(
            page,
            _continue="1",
            **{"overrides-0-domains": "changed.example", "overrides-1-DELETE": "on"},
        ),
    )

    assert saved.status_code == 302, saved.context and saved.context["editor"].form.errors
    assert saved["Location"] == url
    after = routes_through_api(admin, long_rule.pk)[2]
    assert after == [
        *before[:20],
        (before[20][0], ["changed.example"], *before[20][2:]),
        *before[22:],
    ]


def test_a_page_whose_overrides_moved_since_it_was_read_is_refused(browser, admin, long_rule):
    url = f"{change_page(long_rule)}?overrides_page=2"
    page = browser.get(url)
    stored = admin.get(f"/routing_rules/{long_rule.pk}").json()["data"]["routing_rule"]
    # Meanwhile a script drops the first override: every later one moves up a place.
    moved = admin.put(
        f"/routing_rules/{long_rule.pk}",
        {"routing_rule": {"domain_overrides": stored["domain_overrides"][1:]}},
    )
    assert moved.status_code == 200
    before = routes_through_api(admin, long_rule.pk)

    refused = browser.post(url, submitted(page, **{"overrides-0-domains": "changed.example"}))

    assert refused.status_code == 200
    assert refused.context["editor"].form.non_field_errors() == [
        "domain_overrides were changed since they were read (the ones shown are no longer at "
        "their place in the list): read them again"
    ]
    assert b"errornote" in refused.content
    assert routes_through_api(admin, long_rule.pk) == before


def test_an_override_a_script_adds_while_the_page_is_open_is_kept(browser, admin, rule, relays):
    """The page sends the overrides it showed, and the save replaces only those: an override
    written meanwhile through the API is not silently deleted by a save that never showed it."""
    page = browser.get(change_page(rule))
    stored = admin.get(f"/routing_rules/{rule.pk}").json()["data"]["routing_rule"]
    added = {
        "domains": ["added.example"],
        "randomization_type": "random",
        "deliver_through": [{"virtual_mta": {"name": "ses-01"}, "portion_of_mail": 1}],
    }
    admin.put(
        f"/routing_rules/{rule.pk}",
        {"routing_rule": {"domain_overrides": [*stored["domain_overrides"], added]}},
    )

    saved = browser.post(
        change_page(rule), submitted(page, **{"overrides-0-domains": "one.example"})
    )

    assert saved.status_code == 302
    overrides = routes_through_api(admin, rule.pk)[2]
    assert [o[1] for o in overrides] == [["one.example"], ["*.example.net"], ["added.example"]]


def test_a_refusal_about_an_override_on_another_page_is_shown_above_the_form(
    browser, admin, long_rule
):
    before = routes_through_api(admin, long_rule.pk)
    page = browser.get(change_page(long_rule))

    # d30.example is listed by override 31, on page 2: the service reports it there.
    refused = browser.post(
        change_page(long_rule), submitted(page, **{"overrides-1-domains": "d30.example"})
    )

    assert refused.status_code == 200
    assert refused.context["editor"].form.non_field_errors() == [
        "domain_overrides[30].domains[0] d30.example is already listed in domain_overrides[1]"
    ]
    assert routes_through_api(admin, long_rule.pk) == before


def test_a_forged_page_record_is_refused_not_a_500(browser, admin, rule):
    before = routes_through_api(admin, rule.pk)
    page = browser.get(change_page(rule))

    refused = browser.post(change_page(rule), submitted(page, **{"window-shown": "1,x"}))
    cut = browser.post(change_page(rule), submitted(page, **{"window-start": None}))

    for response in (refused, cut):
        assert response.status_code == 200
        assert response.context["editor"].window_errors() == [
            "The page was not sent whole: open it again."
        ]
        assert b"The page was not sent whole" in response.content
    assert routes_through_api(admin, rule.pk) == before


@pytest.mark.parametrize("page", ["0", "4", "99999", "x", "-1", "\uff11"])
def test_a_page_number_out_of_range_shows_the_nearest_page(browser, long_rule, page):
    shown = browser.get(f"{change_page(long_rule)}?overrides_page={page}")

    assert shown.status_code == 200
    assert shown.context["editor"].page in (1, 3)
