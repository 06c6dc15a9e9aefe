"""Migration 0013 renames `view_relay_credentials` to `reveal_relay_credentials` in place: whoever
held it (a user, a group) still does, and no "view" grant carries it any more."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from relays.models import RelayServer
from tests.factories import UserFactory

BEFORE = [("relays", "0012_access_key_last_used")]

pytestmark = pytest.mark.django_db(transaction=True)


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)


def latest():
    executor = MigrationExecutor(connection)
    return executor.loader.graph.leaf_nodes("relays")


@pytest.fixture
def held_before_0013(db):
    """A user and a group holding the permission, then the schema taken back before 0013
    (its reverse names the permission `view_relay_credentials` again, as older releases did)."""
    permission, _ = Permission.objects.get_or_create(
        codename="reveal_relay_credentials",
        content_type=ContentType.objects.get_for_model(RelayServer),
        defaults={"name": "Can reveal the stored SMTP passwords of relay servers"},
    )
    user = UserFactory(username="trusted")
    user.user_permissions.add(permission)
    group = Group.objects.create(name="auditors")
    group.permissions.add(permission)
    migrate(BEFORE)
    assert Permission.objects.get(pk=permission.pk).codename == "view_relay_credentials"
    yield user, group, permission.pk
    migrate(latest())


def test_holders_of_the_old_permission_hold_the_new_one(held_before_0013):
    user, group, permission_id = held_before_0013

    migrate(latest())

    renamed = Permission.objects.get(pk=permission_id)
    assert renamed.codename == "reveal_relay_credentials"
    assert not Permission.objects.filter(codename="view_relay_credentials").exists()
    user = type(user).objects.get(pk=user.pk)  # no cached permissions
    assert user.has_perm("relays.reveal_relay_credentials")
    assert group.permissions.filter(codename="reveal_relay_credentials").exists()


def test_granting_every_view_permission_grants_no_password(db):
    viewer = UserFactory(username="viewer")
    viewer.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))

    viewer = type(viewer).objects.get(pk=viewer.pk)
    assert not viewer.has_perm("relays.reveal_relay_credentials")
    assert not viewer.has_perm("relays.probe_relayserver")
