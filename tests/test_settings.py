"""Start-up configuration read from the environment: what a production start (DEBUG off) refuses,
one line per problem, and the settings that come from the environment."""

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

STRONG_KEY = "Zq7-" * 12 + "xy"  # 50 characters, 6 different ones
FERNET_KEY = Fernet.generate_key().decode()
PRODUCTION = {
    "SECRET_KEY": STRONG_KEY,
    "ALLOWED_HOSTS": "relays.example.com",
    "RELAYAPI_ENCRYPTION_KEY": FERNET_KEY,
}
# Everything settings.py reads that the test run itself may have set.
CONFIGURATION = (
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "ACCESS_KEY_ENCRYPTION_KEY",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "DJANGO_SETTINGS_MODULE",
)


def start(show="s.DATABASES['default']['ENGINE']", **env):
    """Import the production settings (as `s`) in a fresh interpreter with exactly this
    environment, and print the repr of the expression `show`."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in CONFIGURATION and not k.startswith(("RELAYAPI_", "SECURE_"))
    }
    return subprocess.run(
        [sys.executable, "-c", f"import relayapi.settings as s; print(repr({show}))"],
        env={**clean, **env},
        capture_output=True,
        text=True,
    )


def refusals(result):
    """The lines of the start-up refusal (the message of ImproperlyConfigured)."""
    assert result.returncode != 0
    message = result.stderr.split("django.core.exceptions.ImproperlyConfigured: ", 1)[1]
    return message.splitlines()


def missing(name):
    return f"{name} must be set when DEBUG is off (set DEBUG=1 for a local development server)."


def test_the_production_settings_start():
    result = start(**PRODUCTION)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "'django.db.backends.sqlite3'"


def test_without_debug_nothing_set_is_refused_one_line_per_missing_variable():
    assert refusals(start()) == [
        missing("SECRET_KEY"),
        missing("ALLOWED_HOSTS"),
        missing("RELAYAPI_ENCRYPTION_KEY"),
    ]


@pytest.mark.parametrize("name", ["SECRET_KEY", "ALLOWED_HOSTS", "RELAYAPI_ENCRYPTION_KEY"])
def test_without_debug_each_missing_variable_is_refused(name):
    env = {k: v for k, v in PRODUCTION.items() if k != name}

    assert refusals(start(**env)) == [missing(name)]


@pytest.mark.parametrize(
    ("secret_key", "why"),
    [
        ("Zq7-" * 12 + "x", "49 characters"),
        ("abcd" * 13, "4 different characters"),
        ("django-insecure-" + STRONG_KEY, "Django's placeholder prefix"),
    ],
)
def test_without_debug_a_weak_secret_key_is_refused(secret_key, why):
    lines = refusals(start(**{**PRODUCTION, "SECRET_KEY": secret_key}))

    assert len(lines) == 1, why
    assert lines[0].startswith(
        "SECRET_KEY is too weak: it needs at least 50 characters, 5 different ones, and no "
        "'django-insecure-' prefix (make one: python3 -c"
    )


def test_with_debug_on_any_secret_key_will_do_and_the_encryption_key_derives_from_it():
    derived = [
        start("s.RELAYAPI_ENCRYPTION_KEYS", DEBUG="1", SECRET_KEY=key) for key in ("k1", "k1", "k2")
    ]

    assert [result.returncode for result in derived] == [0, 0, 0], derived[0].stderr
    first, again, other = (result.stdout for result in derived)
    assert first == again != other
    assert len(eval(first)) == 1
    Fernet(eval(first)[0])  # a valid key


@pytest.mark.parametrize("debug", ["0", "1"])
def test_a_malformed_encryption_key_is_refused_even_with_debug_on(debug):
    env = {**PRODUCTION, "DEBUG": debug, "RELAYAPI_ENCRYPTION_KEY": f"{FERNET_KEY},not-a-key"}

    [line] = refusals(start(**env))

    assert line.startswith("RELAYAPI_ENCRYPTION_KEY: key 2 is not a Fernet key (32 url-safe")


def test_encryption_keys_keep_their_order_and_the_old_access_key_key_decrypts_last():
    older, oldest = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    env = {
        **PRODUCTION,
        "RELAYAPI_ENCRYPTION_KEY": f"{FERNET_KEY}, {older}",
        "ACCESS_KEY_ENCRYPTION_KEY": oldest,
    }

    result = start("s.RELAYAPI_ENCRYPTION_KEYS", **env)

    assert eval(result.stdout) == [FERNET_KEY, older, oldest]


def test_the_old_access_key_key_alone_is_not_enough_without_debug():
    env = {k: v for k, v in PRODUCTION.items() if k != "RELAYAPI_ENCRYPTION_KEY"}

    lines = refusals(start(**env, ACCESS_KEY_ENCRYPTION_KEY=FERNET_KEY))

    assert lines == [missing("RELAYAPI_ENCRYPTION_KEY")]


HTTPS_SETTINGS = (
    "(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, "
    "s.SECURE_HSTS_PRELOAD, s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
    "getattr(s, 'SECURE_PROXY_SSL_HEADER', None))"
)


def test_the_https_settings_are_off_unless_the_environment_turns_them_on():
    result = start(HTTPS_SETTINGS, **PRODUCTION)

    assert eval(result.stdout) == (False, 0, False, False, False, False, None)


def test_the_https_settings_come_from_the_environment():
    env = {
        **PRODUCTION,
        "SECURE_SSL_REDIRECT": "1",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
        "SECURE_HSTS_PRELOAD": "1",
        "SESSION_COOKIE_SECURE": "1",
        "CSRF_COOKIE_SECURE": "1",
        "SECURE_PROXY_SSL_HEADER": "1",
    }

    result = start(HTTPS_SETTINGS, **env)

    assert eval(result.stdout) == (
        True,
        31536000,
        True,
        True,
        True,
        True,
        ("HTTP_X_FORWARDED_PROTO", "https"),
    )


def test_a_laptop_gets_sqlite_with_debug_on(tmp_path):
    result = start(DEBUG="1", RELAYAPI_VAR_DIR=str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "'django.db.backends.sqlite3'"


def test_database_url_selects_postgresql():
    result = start(**PRODUCTION, DATABASE_URL="postgres://u:p@db.example.com:5432/relays")

    # Django's backend with a deadline on every answer (relayapi/postgresql/base.py)
    assert result.stdout.strip() == "'relayapi.postgresql'"
