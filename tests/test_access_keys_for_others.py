"""A key acts as its user, so making one for someone else is making yourself that someone: only
a superuser (or the operator at a shell) makes, changes or deletes other users' keys; everyone
else, their own. A key records who made it, and what is done with it is audited under the key
and its maker."""

import io

import pytest
from django.core.management import call_command

from relays import access_keys, audit
from relays.errors import Forbidden
from relays.models import AccessKey, AuditEntry
from tests import signed
from tests.factories import UserFactory

KEYS = "/admin/relays/accesskey/"
KEY_PERMS = ["add_accesskey", "view_accesskey", "change_accesskey", "delete_accesskey"]


@pytest.fixture
def root(db):
    return UserFactory(username="root-user", is_superuser=True)


@pytest.fixture
def staff(client, db):
    """A staff user who may only add and view access keys, logged in to the admin."""
    UserFactory(username="mallory", perms=KEY_PERMS)
    client.login(username="mallory", password="pw")
    return client


def test_a_staff_user_cannot_make_a_key_for_the_superuser(staff, root):
    page = staff.post(f"{KEYS}add/", {"user": root.pk})

    assert page.status_code == 200  # the form again, the choice refused
    assert "user" in page.context["adminform"].form.errors
    assert not AccessKey.objects.filter(user=root).exists()


def test_the_add_page_offers_a_staff_user_only_themselves(staff, root):
    page = staff.get(f"{KEYS}add/")

    field = page.context["adminform"].form.fields["user"]
    assert [label for value, label in field.choices if value] == ["mallory"]


def test_a_staff_user_makes_their_own_key_and_it_says_who_made_it(staff):
    mallory = AccessKey.user.field.related_model.objects.get(username="mallory")

    page = staff.post(f"{KEYS}add/", {"user": mallory.pk})

    assert page.status_code == 302
    key = AccessKey.objects.get(user__username="mallory")
    assert (key.created_by, key.created_via) == ("mallory", "admin")


def test_a_staff_user_neither_sees_nor_deactivates_anyone_else_s_key(staff, root):
    with audit.acting("command"):
        other = access_keys.create_access_key(root)

    listing = staff.get(KEYS)
    change = staff.get(f"{KEYS}{other.pk}/change/")
    staff.post(KEYS, {"action": "deactivate", "_selected_action": [other.pk]})
    staff.post(f"{KEYS}{other.pk}/delete/", {"post": "yes"})

    assert other.access_key_id not in listing.content.decode()
    assert change.status_code == 302  # "no such key" for them
    other.refresh_from_db()
    assert other.is_active


def test_the_core_refuses_a_key_for_someone_else_whatever_the_door(root):
    mallory = UserFactory(username="mallory", perms=KEY_PERMS)

    with audit.acting("admin", user=mallory), pytest.raises(Forbidden) as refused:
        access_keys.create_access_key(root)

    assert refused.value.messages == [
        "mallory may make and change only their own access keys; only a superuser may for root-user"
    ]
    assert not AccessKey.objects.exists()


def test_a_superuser_makes_keys_for_others_and_is_recorded_as_the_maker(client, root):
    ann = UserFactory(username="ann")
    client.login(username="root-user", password="pw")

    client.post(f"{KEYS}add/", {"user": ann.pk})

    assert AccessKey.objects.get(user=ann).created_by == "root-user"


def test_the_command_records_the_operating_system_user_as_maker(db, capsys):
    import os
    import pwd

    UserFactory(username="ann")
    call_command("create_access_key", "ann")

    key = AccessKey.objects.get(user__username="ann")
    assert (key.created_by, key.created_via) == (pwd.getpwuid(os.geteuid()).pw_name, "command")


def test_mail_manager_audit_entries_name_the_key_and_its_maker(db, root):
    ann = UserFactory(username="ann", perms=["add_relayserver", "view_relayserver"])
    with audit.acting("admin", user=root):
        key = access_keys.create_access_key(ann)
    credentials = {"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret}

    answer = signed.call(
        credentials,
        "CreateRelay",
        {
            "RelayName": "r1",
            "ServerName": "smtp.example.com",
            "ServerPort": 587,
            "Authentication": {"NoAuthentication": {}},
        },
    )

    assert answer.status_code == 200, answer.content
    entry = AuditEntry.objects.get(record_name="r1", action="create")
    assert (entry.actor, entry.facade) == ("ann", "mailmanager")
    assert (entry.access_key_id, entry.access_key_maker) == (key.access_key_id, "root-user")


def test_the_command_line_actor_is_the_process_user_not_logname(db, monkeypatch):
    import os
    import pwd

    monkeypatch.setenv("LOGNAME", "forged")
    monkeypatch.setenv("USER", "forged")
    UserFactory(username="ann")

    call_command("create_access_key", "ann", stdout=io.StringIO())

    entry = AuditEntry.objects.get(record_type="accesskey", action="create")
    assert entry.actor == pwd.getpwuid(os.geteuid()).pw_name != "forged"
