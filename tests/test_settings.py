"""Start-up configuration read from the environment."""

import os
import subprocess
import sys

import pytest


def start(**env):
    """Import the production settings in a fresh interpreter with exactly this environment."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DATABASE_URL"}
    }
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import relayapi.settings as s; print(s.DATABASES['default']['ENGINE'])",
        ],
        env={**clean, **env},
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        ({}, "SECRET_KEY and ALLOWED_HOSTS must be set when DEBUG is off"),
        ({"SECRET_KEY": "k"}, "ALLOWED_HOSTS must be set when DEBUG is off"),
        ({"ALLOWED_HOSTS": "relays.example.com"}, "SECRET_KEY must be set when DEBUG is off"),
    ],
)
def test_without_debug_a_missing_secret_or_host_list_stops_start_up(env, missing):
    result = start(**env)

    assert result.returncode != 0
    assert missing in result.stderr


def test_a_laptop_gets_sqlite_with_debug_on(tmp_path):
    result = start(DEBUG="1", RELAYAPI_VAR_DIR=str(tmp_path))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "django.db.backends.sqlite3"


def test_database_url_selects_postgresql():
    result = start(
        SECRET_KEY="k", ALLOWED_HOSTS="x", DATABASE_URL="postgres://u:p@db.example.com:5432/relays"
    )

    assert result.stdout.strip() == "django.db.backends.postgresql"
