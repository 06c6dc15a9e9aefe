"""Who may do what is audited like the relays are: granting is_superuser or the credentials
permission, a group's permissions, a new or deleted account, whatever the door."""

import io
import os
import pwd

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command

from relays.models import AuditEntry
from tests.factories import UserFactory

User = get_user_model()


def entries(record_type, record_id=None):
    found = AuditEntry.objects.filter(record_type=record_type).order_by("id")
    return list(found if record_id is None else found.filter(record_id=record_id))


@pytest.fixture
def root_browser(client, db):
    UserFactory(username="root", is_superuser=True)
    client.login(username="root", password="pw")
    return client


def user_form(user, **changes):
    return {
        "username": user.username,
        "is_active": "on",
        "is_staff": "on",
        "date_joined_0": "2026-01-01",
        "date_joined_1": "00:00:00",
        "initial-date_joined_0": "2026-01-01",
        "initial-date_joined_1": "00:00:00",
        **changes,
    }


def test_granting_superuser_in_the_admin_is_audited_with_the_operator(root_browser):
    bob = UserFactory(username="bob")

    page = root_browser.post(
        f"/admin/auth/user/{bob.pk}/change/", user_form(bob, is_superuser="on")
    )

    assert page.status_code == 302, page.context["adminform"].form.errors
    entry = [e for e in entries("user", bob.pk) if "is_superuser" in (e.after or {})][-1]
    assert (entry.actor, entry.facade, entry.action) == ("root", "admin", "update")
    assert (entry.before["is_superuser"], entry.after["is_superuser"]) == (False, True)


def test_granting_the_credentials_permission_is_audited(root_browser):
    bob = UserFactory(username="bob")
    reveal = Permission.objects.get(codename="reveal_relay_credentials")

    root_browser.post(
        f"/admin/auth/user/{bob.pk}/change/", user_form(bob, user_permissions=[reveal.pk])
    )

    entry = [e for e in entries("user", bob.pk) if "user_permissions" in (e.after or {})][-1]
    assert entry.before == {"user_permissions": []}
    assert entry.after == {"user_permissions": ["relays.reveal_relay_credentials"]}
    assert (entry.actor, entry.facade) == ("root", "admin")


def test_a_group_s_permissions_and_members_are_audited(db):
    group = Group.objects.create(name="operators")
    bob = UserFactory(username="bob")

    group.permissions.add(Permission.objects.get(codename="change_relayserver"))
    group.user_set.add(bob)

    changed = [e.after for e in entries("group", group.pk) if e.action == "update"]
    assert changed == [{"permissions": ["relays.change_relayserver"]}, {"users": ["bob"]}]


def test_createsuperuser_is_audited_as_the_process_user_with_the_password_redacted(db, monkeypatch):
    monkeypatch.setenv("LOGNAME", "forged")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "s3cret-pass")

    call_command(
        "createsuperuser",
        "--noinput",
        username="ops",
        email="ops@example.com",
        stdout=io.StringIO(),
    )

    made = [e for e in entries("user") if e.record_name == "ops"]
    assert made and made[0].action == "create"
    assert all(e.actor == pwd.getpwuid(os.geteuid()).pw_name for e in made)
    assert all(e.facade == "command" for e in made)
    assert "s3cret-pass" not in str([(e.before, e.after) for e in made])
    assert made[-1].after["is_superuser"] is True
    assert made[-1].after["password"] == "(redacted)"


def test_a_login_is_not_a_change_of_the_account(client, db):
    UserFactory(username="bob")
    before = AuditEntry.objects.count()

    assert client.login(username="bob", password="pw")

    assert AuditEntry.objects.count() == before


def test_deleting_a_user_is_audited(db):
    bob = UserFactory(username="bob")

    bob.delete()

    assert entries("user")[-1].action == "delete"
    assert entries("user")[-1].record_name == "bob"
