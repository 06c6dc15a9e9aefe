"""Settings for the test suite: the production settings with test-only secrets."""

import os

# As strong as start-up demands with DEBUG off (50+ characters), and obviously a test's.
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-" + "x0-" * 12)
# A fixed Fernet key: tests that need others set RELAYAPI_ENCRYPTION_KEYS themselves.
os.environ.setdefault("RELAYAPI_ENCRYPTION_KEY", "dGVzdC1vbmx5LWVuY3J5cHRpb24ta2V5LTMyYnl0ZXM=")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")

from relayapi.settings import *  # noqa: F403

# Hashing cost belongs to production; tests create many users.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Live-server threads would otherwise keep their connections open past the test run, and the
# test database could not be dropped; the production default is measured by `make bench`.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405
