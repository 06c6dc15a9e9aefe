"""Access keys in the admin: made for a chosen user with the secret shown once, listed per user
without their secrets, deactivated and deleted; every change audited."""

import json

import pytest
from django.test import Client

from relays.models import AccessKey, AuditEntry
from tests import signed
from tests.factories import UserFactory

KEYS = "/admin/relays/accesskey/"


def make_key(browser, username="ann", **user):
    """Create a key for `username` through the add page; (the answer to the POST, the key)."""
    owner = UserFactory(username=username, perms=["view_relayserver"], **user)
    answer = browser.post(f"{KEYS}add/", {"user": owner.pk})
    return answer, AccessKey.objects.get(user=owner)


def works(key):
    """Whether a Mail Manager call signed with `key` is accepted."""
    credentials = {"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret}
    return signed.call(credentials, "ListRelays").status_code == 200


def test_the_created_page_shows_the_secret_once_and_never_again(browser):
    answer, key = make_key(browser)

    assert answer.status_code == 302
    assert answer["Location"] == f"{KEYS}{key.pk}/created/"
    first = browser.get(answer["Location"])
    assert first.status_code == 200
    assert first["Cache-Control"].startswith("max-age=0") and "no-store" in first["Cache-Control"]
    assert key.access_key_id.encode() in first.content
    assert key.secret.encode() in first.content

    again = browser.get(answer["Location"])  # a reload
    change = browser.get(f"{KEYS}{key.pk}/change/")
    listing = browser.get(KEYS)
    history = browser.get(f"{KEYS}{key.pk}/history/")

    for page in (again, change, listing, history):
        assert page.status_code == 200
        assert key.access_key_id.encode() in page.content
        assert key.secret.encode() not in page.content
    assert b"shown once" in again.content


def test_the_secret_is_in_no_form(browser):
    _, key = make_key(browser)

    add = browser.get(f"{KEYS}add/")
    change = browser.get(f"{KEYS}{key.pk}/change/")

    assert list(add.context["adminform"].form.fields) == ["user"]
    assert list(change.context["adminform"].form.fields) == ["is_active"]
    assert "secret" not in change.context["adminform"].readonly_fields
    assert b'name="secret"' not in add.content + change.content


def test_another_session_never_sees_the_secret(browser, persona):
    _, key = make_key(browser)
    other = Client()
    other.login(username="admin", password="pw")

    page = other.get(f"{KEYS}{key.pk}/created/")

    assert page.status_code == 200
    assert key.secret.encode() not in page.content
    # ...and the first session still gets it once: the other visit did not use it up.
    assert key.secret.encode() in browser.get(f"{KEYS}{key.pk}/created/").content


def test_the_created_page_needs_the_add_permission(browser, persona):
    _, key = make_key(browser)
    persona("viewer", perms=["view_accesskey"])
    viewer = Client()
    viewer.login(username="viewer", password="pw")

    assert viewer.get(f"{KEYS}{key.pk}/created/").status_code == 403


def test_a_created_key_signs_mail_manager_calls_and_is_audited(browser):
    _, key = make_key(browser)

    assert key.is_active and works(key)
    entry = AuditEntry.objects.get(record_type="accesskey", record_id=key.pk)
    assert (entry.action, entry.facade, entry.actor) == ("create", "admin", "admin")
    assert entry.record_name == key.access_key_id
    assert entry.after["secret"] == "(redacted)"
    assert key.secret not in json.dumps(entry.after)


def test_a_key_for_a_user_who_may_not_sign_is_made_with_a_warning(browser):
    answer, key = make_key(browser, "outsider", is_staff=False)

    page = browser.get(answer["Location"])

    assert (
        f"Requests signed with {key.access_key_id} are refused until outsider is an active "
        "staff user."
    ).encode() in page.content
    assert key.secret.encode() in page.content
    assert not works(key)


def test_the_list_shows_keys_per_user_with_filters_and_search(browser):
    _, ann = make_key(browser, "ann")
    _, bob = make_key(browser, "bob")
    AccessKey.objects.filter(pk=bob.pk).update(is_active=False)

    def shown(**query):
        page = browser.get(KEYS, query)
        assert page.status_code == 200
        return [key.access_key_id for key in page.context["cl"].result_list]

    assert shown() == [ann.access_key_id, bob.access_key_id]
    assert shown(user__id__exact=bob.user_id) == [bob.access_key_id]
    assert shown(is_active__exact=1) == [ann.access_key_id]
    assert shown(q="bob") == [bob.access_key_id]
    assert shown(q=ann.access_key_id) == [ann.access_key_id]
    page = browser.get(f"{KEYS}{ann.pk}/change/").content.decode()
    assert "Last used" in page and "-" in page  # never used yet


def test_the_deactivate_action_revokes_the_selected_keys_audited(browser):
    _, ann = make_key(browser, "ann")
    _, bob = make_key(browser, "bob")

    page = browser.post(KEYS, {"action": "deactivate", "_selected_action": [ann.pk]}, follow=True)

    assert b"1 access key(s) deactivated." in page.content
    ann.refresh_from_db()
    bob.refresh_from_db()
    assert (ann.is_active, bob.is_active) == (False, True)
    assert not works(ann) and works(bob)
    entry = AuditEntry.objects.get(record_id=ann.pk, action="update")
    assert (entry.facade, entry.before["is_active"], entry.after["is_active"]) == (
        "admin",
        True,
        False,
    )


def test_unticking_active_on_the_change_page_revokes_the_key_audited(browser):
    _, key = make_key(browser)

    answer = browser.post(f"{KEYS}{key.pk}/change/", {})  # is_active unticked

    assert answer.status_code == 302
    key.refresh_from_db()
    assert not key.is_active and not works(key)
    assert AuditEntry.objects.filter(record_id=key.pk, action="update", facade="admin").count() == 1

    browser.post(f"{KEYS}{key.pk}/change/", {"is_active": "on"})

    key.refresh_from_db()
    assert key.is_active and works(key)


def test_delete_removes_the_key_audited(browser):
    _, key = make_key(browser)

    answer = browser.post(f"{KEYS}{key.pk}/delete/", {"post": "yes"})

    assert answer.status_code == 302
    assert not AccessKey.objects.filter(pk=key.pk).exists()
    assert not works(key)
    entry = AuditEntry.objects.get(record_id=key.pk, action="delete")
    assert (entry.facade, entry.record_type, entry.record_name) == (
        "admin",
        "accesskey",
        key.access_key_id,
    )
    assert entry.before["secret"] == "(redacted)"


@pytest.mark.parametrize("view_only", [True, False])
def test_without_add_permission_no_key_is_made(browser, persona, view_only):
    owner = UserFactory(username="ann")
    persona("viewer", perms=["view_accesskey"] if view_only else [])
    viewer = Client()
    viewer.login(username="viewer", password="pw")

    answer = viewer.post(f"{KEYS}add/", {"user": owner.pk})

    assert answer.status_code == 403
    assert not AccessKey.objects.exists()
