"""Access keys for the Mail Manager facade: an id, and a secret kept encrypted at rest.

SigV4 needs the secret itself (it is an HMAC key), so it cannot be hashed like a password;
`AccessKey.secret` is encrypted in the database by relays.crypto, under RELAYAPI_ENCRYPTION_KEY.
"""

import secrets
import string

_ID_ALPHABET = string.ascii_uppercase + string.digits
_SECRET_ALPHABET = string.ascii_letters + string.digits + "/+"


def new_key_pair():
    """(AccessKeyId, SecretAccessKey) in AWS's formats: AKIA + 16, and 40 characters."""
    key_id = "AKIA" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(16))
    secret = "".join(secrets.choice(_SECRET_ALPHABET) for _ in range(40))
    return key_id, secret
