"""Migration 0009 encrypts the rows that exist: SMTP credentials stored in clear, and access-key
secrets under the key of earlier releases (ACCESS_KEY_ENCRYPTION_KEY, or derived from
SECRET_KEY); backwards it restores both."""

import base64
import hashlib

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from relays import crypto

BEFORE = [("relays", "0008_record_counts")]
AFTER = [("relays", "0009_encrypted_secrets")]
NEW_KEY = Fernet.generate_key().decode()
OLD_KEY = Fernet.generate_key().decode()
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

pytestmark = pytest.mark.django_db(transaction=True)


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def at_0008(settings):
    """The schema before 0009 (what an existing database has); the latest one afterwards."""
    apps = migrate(BEFORE)
    yield apps
    # Under the test's keys, which the test may have made unreadable on purpose.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM relays_accesskey")
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes("relays"))


def key_derived_from(secret_key):
    return base64.urlsafe_b64encode(
        hashlib.sha256(b"relayapi.access-keys:" + secret_key.encode()).digest()
    ).decode()


def old_rows(apps, access_key_key, relays=3):
    """Relay servers with clear-text credentials (one without any) and an access key, as an
    earlier release wrote them."""
    user = apps.get_model("auth", "User").objects.create(username="old", is_staff=True)
    apps.get_model("relays", "AccessKey").objects.create(
        access_key_id="AKIAOLDOLDOLDOLDOLD1",
        secret_encrypted=Fernet(access_key_key).encrypt(SECRET.encode()).decode(),
        user=user,
    )
    relay_server = apps.get_model("relays", "RelayServer")
    for n in range(relays + 1):
        relay_server.objects.create(
            type="relay_server",
            name=f"old-{n}",
            source_ip="127.0.0.2",
            source_hostname="out.example.com",
            destination_hostname="smtp.example.com",
            destination_port=25,
            destination_username=None if n == relays else f"user-{n}",
            destination_password=None if n == relays else f"password-{n}",
            max_concurrent_connections=0,
            max_messages_per_hour=0,
        )


def raw(sql):
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def credentials():
    return raw(
        "SELECT destination_username, destination_password FROM relays_relayserver "
        "ORDER BY virtualmta_ptr_id"
    )


@pytest.mark.parametrize("old_key_set", [True, False], ids=["old-key-set", "old-key-derived"])
def test_existing_rows_are_encrypted_and_restored_backwards(
    at_0008, settings, monkeypatch, old_key_set
):
    monkeypatch.setattr(crypto, "BATCH_SIZE", 2)  # several batches
    settings.ACCESS_KEY_ENCRYPTION_KEY = OLD_KEY if old_key_set else ""
    settings.RELAYAPI_ENCRYPTION_KEYS = [NEW_KEY, OLD_KEY] if old_key_set else [NEW_KEY]
    old_access_key_key = OLD_KEY if old_key_set else key_derived_from(settings.SECRET_KEY)
    old_rows(at_0008, old_access_key_key)
    clear = [("user-0", "password-0"), ("user-1", "password-1"), ("user-2", "password-2")]
    assert credentials() == [*clear, (None, None)]

    migrate(AFTER)

    new = Fernet(NEW_KEY)
    encrypted = credentials()
    assert encrypted[3] == (None, None)
    assert [
        (new.decrypt(u.encode()).decode(), new.decrypt(p.encode()).decode())
        for u, p in encrypted[:3]
    ] == clear
    [(secret,)] = raw("SELECT secret FROM relays_accesskey")
    assert new.decrypt(secret.encode()).decode() == SECRET

    migrate(BEFORE)

    assert credentials() == [*clear, (None, None)]
    [(secret,)] = raw("SELECT secret_encrypted FROM relays_accesskey")
    assert Fernet(old_access_key_key).decrypt(secret.encode()).decode() == SECRET


def test_an_access_key_no_known_key_opens_stops_the_migration_and_changes_nothing(
    at_0008, settings
):
    settings.ACCESS_KEY_ENCRYPTION_KEY = ""
    settings.RELAYAPI_ENCRYPTION_KEYS = [NEW_KEY]
    old_rows(at_0008, Fernet.generate_key().decode())  # a key nobody has any more

    with pytest.raises(RuntimeError, match="cannot be decrypted"):
        migrate(AFTER)

    assert credentials()[0] == ("user-0", "password-0")
    assert MigrationExecutor(connection).loader.applied_migrations.keys() >= set(BEFORE)
    assert AFTER[0] not in MigrationExecutor(connection).loader.applied_migrations
