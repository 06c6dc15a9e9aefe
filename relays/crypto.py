"""Secrets at rest: SMTP credentials and access-key secrets, encrypted in the database.

Fernet is authenticated encryption (AES-128-CBC with a random IV, then HMAC-SHA256): without a
key a stored value can be neither read nor changed unnoticed. RELAYAPI_ENCRYPTION_KEY lists the
keys newest first (settings.RELAYAPI_ENCRYPTION_KEYS): the first encrypts, every one decrypts
(MultiFernet), so a key is replaced by putting a new one in front, running
`manage.py rotate_encryption_key`, and then dropping the old one.

The same plaintext encrypts differently every time (random IV): equal passwords do not show as
equal ciphertexts. A ciphertext does give away the plaintext's length rounded up to 16 bytes and
the time it was encrypted (a Fernet token carries a timestamp).
"""

import functools

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import connections, models, transaction

# Rows per batch when every stored value is rewritten (the migration, key rotation).
BATCH_SIZE = 1000


class UndecryptableSecret(Exception):
    """A stored value that no key of RELAYAPI_ENCRYPTION_KEY opens."""

    def __init__(self, where="a stored secret"):
        super().__init__(
            f"{where} cannot be decrypted with any key of RELAYAPI_ENCRYPTION_KEY "
            "(was a key dropped before `manage.py rotate_encryption_key` moved everything "
            "to the newest one?)"
        )


@functools.cache
def _multi_fernet(keys):
    return MultiFernet([Fernet(key) for key in keys])


def fernet():
    """The MultiFernet of the configured keys (built once per key list)."""
    return _multi_fernet(tuple(settings.RELAYAPI_ENCRYPTION_KEYS))


def encrypt(text):
    """The Fernet token (ASCII) of `text` under the newest key."""
    return fernet().encrypt(text.encode()).decode()


def decrypt(token, where="a stored secret"):
    """The text in `token`, whichever configured key encrypted it; UndecryptableSecret if none."""
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableSecret(where) from None


def rotate(token, where="a stored secret"):
    """`token` re-encrypted under the newest key (MultiFernet.rotate)."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise UndecryptableSecret(where) from None


class EncryptedCharField(models.CharField):
    """A string kept encrypted in the database; the model attribute is the plaintext.

    Encrypts when a value is written (get_db_prep_value) and decrypts when a row is read
    (from_db_value); null stays NULL, so `IS NULL` tests and constraints keep working.
    `max_length` limits the plaintext (a validator, as for any CharField); the column is `text`,
    since a token is longer than its plaintext. The only lookup is `isnull`: a ciphertext never
    equals another (random IV), so filtering or joining on one would silently match nothing.
    """

    description = "String (encrypted at rest)"

    def get_internal_type(self):
        return "TextField"

    def get_db_prep_value(self, value, connection, prepared=False):
        value = super().get_db_prep_value(value, connection, prepared)
        return None if value is None else encrypt(value)

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        return decrypt(value, f"{self.model._meta.db_table}.{self.column}")

    def get_lookup(self, lookup_name):
        return super().get_lookup(lookup_name) if lookup_name == "isnull" else None

    def get_transform(self, lookup_name):
        return None


def encrypted_fields():
    """(model, field) for every EncryptedCharField of every installed model."""
    from django.apps import apps

    return [
        (model, field)
        for model in apps.get_models()
        for field in model._meta.local_concrete_fields
        if isinstance(field, EncryptedCharField)
    ]


def rewrite_column(model, column, transform, *, batch_size=None, using="default"):
    """Replace every non-null stored value `v` of `column` (the raw ciphertext or plaintext, not
    the model attribute) by `transform(v)`; the number of rows rewritten.

    Walks the table in primary-key order, `batch_size` rows per transaction (inside an outer
    transaction, such as a migration's, each batch is a savepoint). A row is updated only if it
    still holds `v`: a value written meanwhile by the app is already under the newest key, and is
    kept. Works on historical models too (it reads only table and column names).
    """
    batch_size = batch_size or BATCH_SIZE
    connection = connections[using]
    quote = connection.ops.quote_name
    table, pk, col = quote(model._meta.db_table), quote(model._meta.pk.column), quote(column)
    select = f"SELECT {pk}, {col} FROM {table} WHERE {col} IS NOT NULL"
    update = f"UPDATE {table} SET {col} = %s WHERE {pk} = %s AND {col} = %s"
    rewritten, last = 0, None
    while True:
        with transaction.atomic(using=using), connection.cursor() as cursor:
            if last is None:
                cursor.execute(f"{select} ORDER BY {pk} LIMIT %s", [batch_size])
            else:
                cursor.execute(f"{select} AND {pk} > %s ORDER BY {pk} LIMIT %s", [last, batch_size])
            rows = cursor.fetchall()
            if not rows:
                return rewritten
            cursor.executemany(update, [(transform(value), key, value) for key, value in rows])
            rewritten += cursor.rowcount
            last = rows[-1][0]
