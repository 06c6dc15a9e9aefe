"""What settings.py refuses at start-up: every problem is one line that says what to do.

Imported by settings.py, so nothing here may read Django's settings.
"""

import base64
import binascii
import hashlib

# Django's own rule for a weak SECRET_KEY (the one `check --deploy` applies, security.W009).
from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)

NEW_SECRET_KEY = "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"
NEW_FERNET_KEY = (
    "python3 -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


def secret_key_is_weak(key):
    return (
        len(key) < SECRET_KEY_MIN_LENGTH
        or len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
        or key.startswith(SECRET_KEY_INSECURE_PREFIX)
    )


def is_fernet_key(key):
    """32 bytes in url-safe base64, as Fernet.generate_key() writes them."""
    try:
        return len(base64.urlsafe_b64decode(key.encode("ascii", "strict"))) == 32
    except (ValueError, binascii.Error):
        return False


# The SECRET_KEY DEBUG falls back on, and the label the development encryption key is derived
# with when RELAYAPI_ENCRYPTION_KEY is unset (`make run`'s key). Both are public: the
# development key is no secret and may be printed (relays.checks names it to fix a mismatch).
DEVELOPMENT_SECRET_KEY = "insecure-development-key-do-not-use-in-production"
DEVELOPMENT_KEY_LABEL = "relayapi.encryption"


def derived_fernet_key(label, secret):
    """A Fernet key derived from a secret: for development only (DEBUG on)."""
    digest = hashlib.sha256(label.encode() + b":" + secret.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


def refusals(*, debug, secret_key, allowed_hosts, encryption_keys, old_access_key_key):
    """One line per reason to refuse to start; none when the configuration may run."""
    problems = []
    if not debug:
        for name, value in (
            ("SECRET_KEY", secret_key),
            ("ALLOWED_HOSTS", allowed_hosts),
            ("RELAYAPI_ENCRYPTION_KEY", encryption_keys),
        ):
            if not value:
                problems.append(
                    f"{name} must be set when DEBUG is off "
                    "(set DEBUG=1 for a local development server)."
                )
        if secret_key and secret_key_is_weak(secret_key):
            problems.append(
                f"SECRET_KEY is too weak: it needs at least {SECRET_KEY_MIN_LENGTH} characters, "
                f"{SECRET_KEY_MIN_UNIQUE_CHARACTERS} different ones, and no "
                f"{SECRET_KEY_INSECURE_PREFIX!r} prefix (make one: {NEW_SECRET_KEY})."
            )
    for position, key in enumerate(encryption_keys, 1):
        if not is_fernet_key(key):
            problems.append(
                f"RELAYAPI_ENCRYPTION_KEY: key {position} is not a Fernet key "
                f"(32 url-safe base64 bytes; make one: {NEW_FERNET_KEY})."
            )
    if old_access_key_key and not is_fernet_key(old_access_key_key):
        problems.append(
            "ACCESS_KEY_ENCRYPTION_KEY is not a Fernet key (32 url-safe base64 bytes); "
            "unset it unless access keys created before RELAYAPI_ENCRYPTION_KEY need it."
        )
    return problems
