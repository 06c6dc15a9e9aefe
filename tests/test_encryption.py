"""SMTP credentials and access-key secrets are stored encrypted (relays.crypto), and the keys
rotate: `manage.py rotate_encryption_key` moves every value to the newest key."""

import json

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, connection, transaction

from relays import crypto
from relays.models import AccessKey, RelayServer
from tests.conftest import relay_payload
from tests.factories import RelayServerFactory, UserFactory

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


def stored(relay, column):
    """What the database holds in one column of a relay server's row."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM relays_relayserver WHERE virtualmta_ptr_id = %s", [relay.pk]
        )
        return cursor.fetchone()[0]


def stored_secret(access_key_id):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT secret FROM relays_accesskey WHERE access_key_id = %s", [access_key_id]
        )
        return cursor.fetchone()[0]


def opens(key, token):
    try:
        Fernet(key).decrypt(token.encode())
    except Exception:
        return False
    return True


def test_credentials_written_through_the_api_are_stored_as_fernet_tokens(admin):
    answer = admin.post("/relay_servers", relay_payload())

    relay = RelayServer.objects.get()
    assert answer.status_code == 200
    for column, plaintext in [
        ("destination_username", "myusername"),
        ("destination_password", "mysecret"),
    ]:
        token = stored(relay, column)
        assert plaintext not in token
        assert token.startswith("gAAAAA")  # a Fernet token (version byte 0x80)
        assert crypto.decrypt(token) == plaintext
    assert (relay.destination_username, relay.destination_password) == ("myusername", "mysecret")


def test_the_same_password_never_encrypts_to_the_same_token(db):
    first = RelayServerFactory(destination_username="u", destination_password="same")
    second = RelayServerFactory(destination_username="u", destination_password="same")

    assert stored(first, "destination_password") != stored(second, "destination_password")


def test_no_credentials_stay_null_and_an_empty_username_is_encrypted(db):
    without = RelayServerFactory()
    empty = RelayServerFactory(destination_username="", destination_password="")

    assert stored(without, "destination_username") is None
    assert stored(without, "destination_password") is None
    assert stored(empty, "destination_username") not in (None, "")
    assert RelayServer.objects.get(pk=empty.pk).destination_username == ""


def test_a_200_character_password_is_kept_whole_although_its_token_is_longer(admin, unchanged):
    longest = "p" * 200
    body = relay_payload(destination={"hostname": "smtp.example.com", "port": 25})
    body["relay_server"]["destination"].update(username="u", password=longest)

    assert admin.post("/relay_servers", body).status_code == 200
    relay = RelayServer.objects.get()
    assert len(stored(relay, "destination_password")) > 200
    assert relay.destination_password == longest

    body["relay_server"].update(name="too-long")
    body["relay_server"]["destination"]["password"] = longest + "p"
    with unchanged():
        assert admin.post("/relay_servers", body).status_code == 400


def test_the_one_credential_source_constraint_still_holds_on_encrypted_columns(db, unchanged):
    RelayServerFactory(name="arn-only", secret_arn="arn:aws:secretsmanager:x")

    with unchanged(), pytest.raises(IntegrityError), transaction.atomic():
        RelayServerFactory(
            name="both",
            secret_arn="arn:aws:secretsmanager:x",
            destination_username="u",
            destination_password="p",
        )


def test_encrypted_columns_cannot_be_filtered_on_except_for_null(db):
    RelayServerFactory(name="with-auth", with_auth=True)
    RelayServerFactory(name="without")

    assert list(
        RelayServer.objects.filter(destination_password__isnull=False).values_list(
            "name", flat=True
        )
    ) == ["with-auth"]
    with pytest.raises(FieldError):
        RelayServer.objects.filter(destination_password="mysecret").count()
    with pytest.raises(FieldError):
        RelayServer.objects.filter(destination_username__icontains="my").count()


def test_a_token_that_no_configured_key_opens_is_an_error_naming_the_column(db, settings):
    settings.RELAYAPI_ENCRYPTION_KEYS = [KEY_A]
    relay = RelayServerFactory(with_auth=True)
    settings.RELAYAPI_ENCRYPTION_KEYS = [KEY_B]

    with pytest.raises(crypto.UndecryptableSecret, match=r"relays_relayserver\.destination_"):
        RelayServer.objects.get(pk=relay.pk)


def create_access_key(capsys, username="keyholder"):
    UserFactory(username=username)
    call_command("create_access_key", username)
    return json.loads(capsys.readouterr().out)


def test_rotation_moves_every_secret_to_the_newest_key(db, settings, capsys):
    settings.RELAYAPI_ENCRYPTION_KEYS = [KEY_A]
    relays = [RelayServerFactory(with_auth=True) for _ in range(3)]
    RelayServerFactory(name="no-auth")
    key = create_access_key(capsys)
    assert opens(KEY_A, stored(relays[0], "destination_password"))

    settings.RELAYAPI_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    call_command("rotate_encryption_key", "--batch-size", "2")
    output = capsys.readouterr().out
    settings.RELAYAPI_ENCRYPTION_KEYS = [KEY_B]

    assert output.splitlines() == [
        "relays_relayserver.destination_username: 3 re-encrypted",
        "relays_relayserver.destination_password: 3 re-encrypted",
        "relays_accesskey.secret: 1 re-encrypted",
        "7 values re-encrypted under the newest key",
    ]
    for relay in relays:
        token = stored(relay, "destination_password")
        assert opens(KEY_B, token) and not opens(KEY_A, token)
        fresh = RelayServer.objects.get(pk=relay.pk)
        assert (fresh.destination_username, fresh.destination_password) == (
            "myusername",
            "mysecret",
        )
    assert RelayServer.objects.get(name="no-auth").destination_password is None
    assert AccessKey.objects.get().secret == key["SecretAccessKey"]


def test_without_rotation_the_new_key_alone_reads_nothing_written_under_the_old(
    db, settings, capsys
):
    settings.RELAYAPI_ENCRYPTION_KEYS = [KEY_A]
    relay = RelayServerFactory(with_auth=True)
    create_access_key(capsys)

    settings.RELAYAPI_ENCRYPTION_KEYS = [KEY_B]

    with pytest.raises(crypto.UndecryptableSecret):
        RelayServer.objects.get(pk=relay.pk)
    with pytest.raises(crypto.UndecryptableSecret):
        AccessKey.objects.get()


def test_rotation_without_the_old_key_stops_and_changes_nothing(db, settings):
    settings.RELAYAPI_ENCRYPTION_KEYS = [KEY_A]
    relay = RelayServerFactory(with_auth=True)
    before = stored(relay, "destination_username"), stored(relay, "destination_password")

    settings.RELAYAPI_ENCRYPTION_KEYS = [KEY_B]
    with pytest.raises(CommandError, match="cannot be decrypted with any key"):
        call_command("rotate_encryption_key")

    assert (stored(relay, "destination_username"), stored(relay, "destination_password")) == before


def test_a_value_written_while_rotation_runs_is_kept(db, settings):
    settings.RELAYAPI_ENCRYPTION_KEYS = [KEY_A]
    relay = RelayServerFactory(with_auth=True)
    settings.RELAYAPI_ENCRYPTION_KEYS = [KEY_B, KEY_A]

    def rotate_while_the_api_changes_the_password(token):
        # The API writes a new password between the rotation's read and its write.
        RelayServer.objects.filter(pk=relay.pk).update(destination_password="changed")
        return crypto.rotate(token)

    rewritten = crypto.rewrite_column(
        RelayServer, "destination_password", rotate_while_the_api_changes_the_password
    )

    assert rewritten == 0
    assert RelayServer.objects.get(pk=relay.pk).destination_password == "changed"
