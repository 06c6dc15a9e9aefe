"""Secrets at rest: SMTP credentials and access-key secrets, encrypted in the database.

Fernet is authenticated encryption (AES-128-CBC with a random IV, then HMAC-SHA256): without a
key a stored value can be neither read nor changed unnoticed. RELAYAPI_ENCRYPTION_KEY lists the
keys newest first (settings.RELAYAPI_ENCRYPTION_KEYS): the first encrypts, every one decrypts
(MultiFernet), so a key is replaced by putting a new one in front, running
`manage.py rotate_encryption_key`, and then dropping the old one.

The same plaintext encrypts differently every time (random IV): equal passwords do not show as
equal ciphertexts. A ciphertext does give away the plaintext's length rounded up to 16 bytes and
the time it was encrypted (a Fernet token carries a timestamp).

A database written under one key and served under another (`make run`, then `make serve` on
the same var/ database) is named by `key_problem()`: `manage.py check`, start-up and `/readyz`
report it with the fix, and every door answers UndecryptableSecret with a clear non-500.
"""

import functools
from dataclasses import dataclass

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import connections, models, transaction

from relayapi import deployment

# Rows per batch when every stored value is rewritten (the migration, key rotation).
BATCH_SIZE = 1000


# `make run`'s key (relayapi.deployment): public, so it may be printed.
DEVELOPMENT_SECRET_KEY = deployment.DEVELOPMENT_SECRET_KEY
KEY_LABEL = deployment.DEVELOPMENT_KEY_LABEL


def development_key():
    """The key DEBUG encrypts under when neither SECRET_KEY nor RELAYAPI_ENCRYPTION_KEY is set."""
    return deployment.derived_fernet_key(KEY_LABEL, DEVELOPMENT_SECRET_KEY)


def on_derived_key():
    """Whether this process encrypts under a key DEBUG derived from SECRET_KEY, i.e. runs with
    RELAYAPI_ENCRYPTION_KEY unset."""
    keys = settings.RELAYAPI_ENCRYPTION_KEYS
    return bool(
        settings.DEBUG
        and keys
        and keys[0] == deployment.derived_fernet_key(KEY_LABEL, settings.SECRET_KEY)
    )


ROTATE = "then run `manage.py rotate_encryption_key` and drop the old key"


def _fix(development_key_opens, key=None):
    """What the operator does about values no configured key opens (`key`: the development
    key, printed when it opens them; otherwise `manage.py check` names it)."""
    if on_derived_key():
        return (
            "this DEBUG server has RELAYAPI_ENCRYPTION_KEY unset and uses the development key "
            "derived from SECRET_KEY, but the stored values were written under another key (by `make serve`?): "
            "set RELAYAPI_ENCRYPTION_KEY to that key, or use another database for development"
        )
    if development_key_opens:
        return (
            "the stored values were written under the development key (`make run`, DEBUG with "
            "RELAYAPI_ENCRYPTION_KEY unset); keep them by listing it after the current key, "
            f"RELAYAPI_ENCRYPTION_KEY=<current key>,{key or '<development key>'}, "
            + ROTATE
            + ("" if key else " (`manage.py check` prints the development key)")
        )
    return (
        "the stored values were written under a key RELAYAPI_ENCRYPTION_KEY no longer lists (dropped before "
        "`manage.py rotate_encryption_key` moved everything to the newest one?); add it after "
        "the current key, RELAYAPI_ENCRYPTION_KEY=<current key>,<old key>, " + ROTATE
    )


def _configured():
    if on_derived_key():
        return "the development key (RELAYAPI_ENCRYPTION_KEY is unset)"
    return "any key of RELAYAPI_ENCRYPTION_KEY"


class UndecryptableSecret(Exception):
    """A stored value that no configured key opens; the message names the fix, never a key."""

    def __init__(self, where="a stored secret"):
        self.where = where
        super().__init__(
            f"{where} cannot be decrypted with {_configured()}: {_fix(development_key_opens=False)}"
        )


@dataclass(frozen=True)
class KeyProblem:
    """Stored secrets that none of the configured keys opens: `columns` ("table.column"), and
    whether the development key opens them (a `make run` database served by `make serve`)."""

    columns: tuple
    development_key_opens: bool

    def __str__(self):
        """The problem and the fix, without any key (`/readyz` answers anyone)."""
        return self._message(None)

    def with_key(self):
        """The same, printing the development key when it is the one to add (`manage.py check`)."""
        return self._message(development_key() if self.development_key_opens else None)

    def _message(self, key):
        return (
            f"stored secrets ({', '.join(self.columns)}) cannot be decrypted with {_configured()}: "
            f"{_fix(self.development_key_opens, key)}"
        )


def _opens(multi_fernet, token):
    try:
        multi_fernet.decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def stored_samples(using="default"):
    """{"table.column": its oldest stored value} for each encrypted column holding one. One
    query (a LIMIT-1 subquery per column); DatabaseError when the tables are not there."""
    fields = encrypted_fields()
    connection = connections[using]
    quote = connection.ops.quote_name
    subqueries = [
        f"(SELECT {quote(field.column)} FROM {quote(model._meta.db_table)} "
        f"WHERE {quote(field.column)} IS NOT NULL ORDER BY {quote(model._meta.pk.column)} LIMIT 1)"
        for model, field in fields
    ]
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(subqueries))
        row = cursor.fetchone()
    return {
        f"{model._meta.db_table}.{field.column}": value
        for (model, field), value in zip(fields, row, strict=True)
        if value is not None
    }


def key_problem(using="default"):
    """A KeyProblem when the oldest stored value of some encrypted column opens with none of
    the configured keys; None when they all open (or nothing is stored). One query."""
    samples = stored_samples(using)
    closed = [where for where, token in samples.items() if not _opens(fernet(), token)]
    if not closed:
        return None
    development = _multi_fernet((development_key(),))
    return KeyProblem(tuple(closed), all(_opens(development, samples[w]) for w in closed))


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


def stored(record, attname):
    """Whether `record` holds a value in its encrypted field `attname`, without decrypting it
    when it was loaded `without_secrets` (the annotation says)."""
    known = getattr(record, f"{attname}_stored", None)
    return known if known is not None else getattr(record, attname) is not None


def without_secrets(queryset):
    """`queryset` with its model's encrypted fields deferred: loading a row decrypts nothing, so
    it works whatever key the row was written under (a delete, a revoke). Each row says whether
    a value is stored (`<attname>_stored`), which the audit snapshot redacts without reading."""
    names = [
        field.attname
        for field in queryset.model._meta.concrete_fields
        if isinstance(field, EncryptedCharField)
    ]
    stored = {
        f"{name}_stored": models.ExpressionWrapper(
            models.Q(**{f"{name}__isnull": False}), output_field=models.BooleanField()
        )
        for name in names
    }
    return queryset.defer(*names).annotate(**stored)


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
