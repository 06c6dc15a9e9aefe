"""SMTP credentials and access-key secrets encrypted at rest (issue 9).

The relay servers' usernames and passwords become `text` columns holding Fernet tokens under
RELAYAPI_ENCRYPTION_KEY (relays.crypto); the rows there are encrypted here. Access-key secrets
were already Fernet tokens, under ACCESS_KEY_ENCRYPTION_KEY or, when that was unset, a key
derived from SECRET_KEY: they are re-encrypted under RELAYAPI_ENCRYPTION_KEY, so neither is
needed afterwards. Both walk their table in batches (relays.crypto.rewrite_column), inside the
migration's one transaction: a half-encrypted table would not be readable.

Reversible: backwards, the credentials are decrypted again and the access-key secrets go back
under ACCESS_KEY_ENCRYPTION_KEY, or the key derived from SECRET_KEY.
"""

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import migrations

from relays import crypto, validators


def _key_derived_from_secret_key():
    """The access-key encryption key of earlier releases when ACCESS_KEY_ENCRYPTION_KEY was
    unset (frozen here: relays.mailmanager.keys no longer has it)."""
    digest = hashlib.sha256(b"relayapi.access-keys:" + settings.SECRET_KEY.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def _old_access_key_fernet():
    key = settings.ACCESS_KEY_ENCRYPTION_KEY
    return Fernet(key) if key else _key_derived_from_secret_key()


def _credential_columns(apps):
    model = apps.get_model("relays", "RelayServer")
    return [(model, column) for column in ("destination_username", "destination_password")]


def encrypt_credentials(apps, schema_editor):
    for model, column in _credential_columns(apps):
        crypto.rewrite_column(model, column, crypto.encrypt, using=schema_editor.connection.alias)


def _fire_deferred_checks(schema_editor):
    """PostgreSQL refuses to ALTER a table with pending (deferred) foreign-key checks, which a
    row updated twice in one transaction leaves behind; backwards, the ALTERs come right after
    the rows were rewritten. Run those checks now."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        schema_editor.execute("SET CONSTRAINTS ALL DEFERRED")


def decrypt_credentials(apps, schema_editor):
    for model, column in _credential_columns(apps):
        crypto.rewrite_column(model, column, crypto.decrypt, using=schema_editor.connection.alias)
    _fire_deferred_checks(schema_editor)


def _access_key_secret_to_new_key(token):
    # RELAYAPI_ENCRYPTION_KEY's keys include ACCESS_KEY_ENCRYPTION_KEY when that is set.
    for old in (crypto.fernet(), _key_derived_from_secret_key()):
        try:
            return crypto.encrypt(old.decrypt(token.encode()).decode())
        except InvalidToken:
            continue
    raise RuntimeError(
        "an access key's secret cannot be decrypted with RELAYAPI_ENCRYPTION_KEY, "
        "ACCESS_KEY_ENCRYPTION_KEY or the key derived from SECRET_KEY: set "
        "ACCESS_KEY_ENCRYPTION_KEY (or SECRET_KEY) to what it was when the key was created, "
        "or delete that access key"
    )


def access_keys_to_new_key(apps, schema_editor):
    crypto.rewrite_column(
        apps.get_model("relays", "AccessKey"),
        "secret",
        _access_key_secret_to_new_key,
        using=schema_editor.connection.alias,
    )


def access_keys_to_old_key(apps, schema_editor):
    old = _old_access_key_fernet()
    crypto.rewrite_column(
        apps.get_model("relays", "AccessKey"),
        "secret",
        lambda token: old.encrypt(crypto.decrypt(token).encode()).decode(),
        using=schema_editor.connection.alias,
    )
    _fire_deferred_checks(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("relays", "0008_record_counts"),
    ]

    operations = [
        migrations.AlterField(
            model_name="relayserver",
            name="destination_username",
            field=crypto.EncryptedCharField(
                blank=True,
                max_length=200,
                null=True,
                validators=[
                    validators.credential_length,
                    validators.no_control_characters,
                ],
            ),
        ),
        migrations.AlterField(
            model_name="relayserver",
            name="destination_password",
            field=crypto.EncryptedCharField(
                blank=True,
                max_length=200,
                null=True,
                validators=[
                    validators.credential_length,
                    validators.no_control_characters,
                ],
            ),
        ),
        migrations.RunPython(encrypt_credentials, decrypt_credentials, elidable=False),
        migrations.RenameField(
            model_name="accesskey",
            old_name="secret_encrypted",
            new_name="secret",
        ),
        migrations.AlterField(
            model_name="accesskey",
            name="secret",
            field=crypto.EncryptedCharField(max_length=40),
        ),
        migrations.RunPython(access_keys_to_new_key, access_keys_to_old_key, elidable=False),
    ]
