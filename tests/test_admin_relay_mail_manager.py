"""A relay server's Mail Manager side on its admin page: RelayId and ARN shown read-only, tags
edited under the Mail Manager API's rules and audited like TagResource."""

import json

import pytest

from relays.models import AuditEntry, RelayTag
from tests import signed
from tests.factories import RelayServerFactory, UserFactory


def page_of(relay):
    return f"/admin/relays/relayserver/{relay.pk}/change/"


def form_data(page):
    """What the browser sends back for the change page as it was rendered, tags included."""
    data = {}

    def add(form):
        for name in form.fields:
            value = form[name].value()
            if value is True:
                data[form.add_prefix(name)] = "on"
            elif value is not None and value is not False:
                data[form.add_prefix(name)] = value

    add(page.context["adminform"].form)
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        add(formset.management_form)
        for form in formset.forms:
            add(form)
    return data


def with_tags(data, *tags, delete=()):
    """`data` with the existing tag rows whose keys are in `delete` marked for deletion, and
    `tags` ((key, value) pairs) as new rows."""
    data = dict(data)
    initial = int(data["tags-INITIAL_FORMS"])
    for i in range(initial):
        if data.get(f"tags-{i}-key") in delete:
            data[f"tags-{i}-DELETE"] = "on"
    for i, (key, value) in enumerate(tags, start=initial):
        data[f"tags-{i}-key"], data[f"tags-{i}-value"] = key, value
    data["tags-TOTAL_FORMS"] = initial + len(tags)
    return data


def stored(relay):
    return dict(RelayTag.objects.filter(relay=relay).values_list("key", "value"))


def tag_entries(relay):
    return [
        (entry.facade, entry.before, entry.after)
        for entry in AuditEntry.objects.filter(record_id=relay.pk, action="update").order_by("id")
        if "tags" in (entry.after or {})
    ]


@pytest.fixture
def relay(db):
    return RelayServerFactory(name="relay-a")


def test_the_change_page_shows_relay_id_and_arn_read_only(browser, relay):
    page = browser.get(page_of(relay))

    arn = f"arn:aws:ses:us-east-1:000000000000:mailmanager-smtp-relay/{relay.relay_id}"
    assert relay.arn == arn
    assert arn.encode() in page.content
    assert relay.relay_id.encode() in page.content
    form = page.context["adminform"].form
    assert "relay_id" not in form.fields and "arn" not in form.fields
    assert {"relay_id", "arn"} <= set(page.context["adminform"].readonly_fields)
    fieldsets = {name: options["fields"] for name, options in page.context["adminform"].fieldsets}
    assert fieldsets["Mail Manager"] == ["relay_id", "arn"]


def test_the_arn_is_the_one_mail_manager_answers(browser, relay):
    UserFactory(username="ann", perms=["view_relayserver"])
    key = signed.new_key("ann")

    got = json.loads(signed.call(key, "GetRelay", {"RelayId": relay.relay_id}).content)

    assert got["RelayArn"] == relay.arn
    assert relay.arn.encode() in browser.get(page_of(relay)).content


def test_the_add_page_shows_no_relay_id_yet(browser):
    page = browser.get("/admin/relays/relayserver/add/")

    assert page.status_code == 200
    assert "relay_id" not in page.context["adminform"].readonly_fields
    assert b"mailmanager-smtp-relay" not in page.content


def test_tags_added_on_the_page_are_stored_audited_and_listed_by_mail_manager(browser, relay):
    RelayTag.objects.create(relay=relay, key="team", value="ops")
    data = with_tags(form_data(browser.get(page_of(relay))), ("env", "prod"), ("cost:centre", ""))

    answer = browser.post(page_of(relay), data)

    assert answer.status_code == 302
    assert stored(relay) == {"team": "ops", "env": "prod", "cost:centre": ""}
    assert tag_entries(relay) == [
        (
            "admin",
            {"tags": {"team": "ops"}},
            {"tags": {"cost:centre": "", "env": "prod", "team": "ops"}},
        )
    ]
    UserFactory(username="ann", perms=["view_relayserver"])
    listed = signed.call(signed.new_key("ann"), "ListTagsForResource", {"ResourceArn": relay.arn})
    assert sorted(t["Key"] for t in json.loads(listed.content)["Tags"]) == [
        "cost:centre",
        "env",
        "team",
    ]


def test_a_tag_deleted_on_the_page_is_removed_and_audited(browser, relay):
    RelayTag.objects.create(relay=relay, key="team", value="ops")
    RelayTag.objects.create(relay=relay, key="env", value="prod")
    data = with_tags(form_data(browser.get(page_of(relay))), delete={"env"})

    assert browser.post(page_of(relay), data).status_code == 302

    assert stored(relay) == {"team": "ops"}
    assert tag_entries(relay) == [
        ("admin", {"tags": {"env": "prod", "team": "ops"}}, {"tags": {"team": "ops"}})
    ]


def test_saving_without_touching_the_tags_audits_no_tag_change(browser, relay):
    RelayTag.objects.create(relay=relay, key="team", value="ops")

    assert browser.post(page_of(relay), form_data(browser.get(page_of(relay)))).status_code == 302

    assert stored(relay) == {"team": "ops"}
    assert tag_entries(relay) == []


@pytest.mark.parametrize(
    ("key", "value", "field", "message"),
    [
        ("has space", "x", "key", "must match [a-zA-Z0-9/_+=.:@-]{1,128}"),
        ("k" * 129, "x", "key", "must match [a-zA-Z0-9/_+=.:@-]{1,128}"),
        ("aws:owner", "x", "key", "must not start with aws: (reserved)"),
        ("AWS:owner", "x", "key", "must not start with aws: (reserved)"),
        ("owner", "a b", "value", "must match [a-zA-Z0-9/_+=.:@-]{0,256}"),
        ("owner", "v" * 257, "value", "must match [a-zA-Z0-9/_+=.:@-]{0,256}"),
    ],
)
def test_a_tag_breaking_a_mail_manager_rule_is_refused_at_its_field(
    browser, relay, key, value, field, message
):
    data = with_tags(form_data(browser.get(page_of(relay))), (key, value))

    page = browser.post(page_of(relay), data)

    assert page.status_code == 200
    [inline] = page.context["inline_admin_formsets"]
    assert inline.formset.forms[0].errors == {field: [message]}
    assert stored(relay) == {}
    assert tag_entries(relay) == []


def test_the_same_key_twice_is_refused(browser, relay):
    RelayTag.objects.create(relay=relay, key="team", value="ops")
    data = with_tags(form_data(browser.get(page_of(relay))), ("team", "dev"))

    page = browser.post(page_of(relay), data)

    assert page.status_code == 200
    assert b"Please correct the duplicate data for key" in page.content
    assert stored(relay) == {"team": "ops"}


def test_more_tags_than_the_quota_are_refused(browser, relay, settings):
    settings.MAILMANAGER_MAX_TAGS = 2
    RelayTag.objects.create(relay=relay, key="team", value="ops")
    data = with_tags(form_data(browser.get(page_of(relay))), ("a", "1"), ("b", "2"))

    page = browser.post(page_of(relay), data)

    assert page.status_code == 200
    [inline] = page.context["inline_admin_formsets"]
    assert inline.formset.non_form_errors() == ["a resource may have at most 2 tags"]
    assert stored(relay) == {"team": "ops"}

    # replacing one within the quota is fine
    data = with_tags(form_data(browser.get(page_of(relay))), ("a", "1"), delete={"team"})
    assert browser.post(page_of(relay), data).status_code == 302
    assert stored(relay) == {"a": "1"}


def test_a_post_without_the_tags_part_keeps_the_tags(browser, relay):
    RelayTag.objects.create(relay=relay, key="team", value="ops")
    data = {
        k: v for k, v in form_data(browser.get(page_of(relay))).items() if not k.startswith("tags-")
    }

    assert browser.post(page_of(relay), data).status_code == 302

    assert stored(relay) == {"team": "ops"}
