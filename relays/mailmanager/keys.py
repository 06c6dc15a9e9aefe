"""Access keys for the Mail Manager facade: an id, and a secret kept encrypted at rest.

SigV4 needs the secret itself (it is an HMAC key), so it cannot be hashed like a password; it is
encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under ACCESS_KEY_ENCRYPTION_KEY, or, when that
is unset, under a key derived from SECRET_KEY.
"""

import base64
import hashlib
import secrets
import string

from cryptography.fernet import Fernet
from django.conf import settings

_ID_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "/+"


def _fernet():
    key = settings.ACCESS_KEY_ENCRYPTION_KEY
    if not key:
        digest = hashlib.sha256(b"relayapi.access-keys:" + settings.SECRET_KEY.encode()).digest()
        key = base64.urlsafe_b64encode(digest)
    return Fernet(key)


def encrypt(secret):
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(token):
    return _fernet().decrypt(token.encode()).decode()


def new_key_pair():
    """(AccessKeyId, SecretAccessKey) in AWS's formats: AKIA + 16, and 40 characters."""
    key_id = "AKIA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    return key_id, secret
