"""Whoever gets a copy of the database, the SQLite file's bytes or a `pg_dump`, finds no SMTP
username or password and no access-key secret in it; the SQLite file and its directory are
readable by their owner only."""

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from tests.conftest import relay_payload

ROOT = Path(__file__).resolve().parent.parent
RELAY_NAME = "relay-in-the-dump"
USERNAME = "smtp-user-7f3a9c"
PASSWORD = "hunter2-smtp-password-51d0"

CREATE = f"""
import json
from django.contrib.auth.models import User
from django.core.management import call_command
from relays.models import RelayServer

User.objects.create_user("dumper", is_staff=True)
RelayServer.objects.create(
    name={RELAY_NAME!r}, source_ip="127.0.0.2", source_hostname="out.example.com",
    destination_hostname="smtp.example.com", destination_port=587,
    destination_username={USERNAME!r}, destination_password={PASSWORD!r},
    max_concurrent_connections=0, max_messages_per_hour=0,
)
call_command("create_access_key", "dumper")
"""


def manage(var_dir, *args):
    """manage.py ARGS with production settings (DEBUG off) on an SQLite database under var_dir,
    with the usual umask (group and others may read what is created without a mode)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"DEBUG", "DATABASE_URL", "DJANGO_SETTINGS_MODULE"}
        and not name.startswith("RELAYAPI_")
    }
    env.update(
        SECRET_KEY="dump-test-" + "s3cr3t-" * 8,
        ALLOWED_HOSTS="localhost",
        RELAYAPI_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        RELAYAPI_VAR_DIR=str(var_dir),
    )
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        umask=0o022,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def sqlite_database(tmp_path_factory):
    """A fresh SQLite database, made by manage.py, with a relay and an access key in it."""
    var_dir = tmp_path_factory.mktemp("dump") / "var"
    manage(var_dir, "migrate", "--noinput")
    key = json.loads(manage(var_dir, "shell", "--no-imports", "-c", CREATE))
    return var_dir, key


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def test_the_sqlite_file_holds_no_smtp_credential_and_no_access_key_secret(sqlite_database):
    var_dir, key = sqlite_database

    dump = (var_dir / "relayapi.sqlite3").read_bytes()

    assert RELAY_NAME.encode() in dump
    assert key["AccessKeyId"].encode() in dump
    assert USERNAME.encode() not in dump
    assert PASSWORD.encode() not in dump
    assert key["SecretAccessKey"].encode() not in dump


def test_the_sqlite_directory_is_created_owner_only(sqlite_database):
    var_dir, _ = sqlite_database

    assert mode(var_dir) == 0o700


def test_the_sqlite_file_is_owner_only(sqlite_database):
    var_dir, _ = sqlite_database

    assert mode(var_dir / "relayapi.sqlite3") == 0o600


def test_a_world_readable_database_file_is_made_owner_only_when_opened(tmp_path):
    database = tmp_path / "relayapi.sqlite3"
    sqlite3.connect(database).close()
    database.chmod(0o644)

    manage(tmp_path, "migrate", "--noinput")

    assert mode(database) == 0o600


def pg_dump_binary():
    """pg_dump of the newest PostgreSQL installed (as deploy/pg-temp.sh picks initdb)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_dump"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    return str(found[-1]) if found else shutil.which("pg_dump")


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_pg_dump_holds_no_smtp_credential_and_no_access_key_secret(admin, capsys):
    body = relay_payload(name=RELAY_NAME)
    body["relay_server"]["destination"].update(username=USERNAME, password=PASSWORD)
    assert admin.post("/relay_servers", body).status_code == 200
    call_command("create_access_key", "admin")
    key = json.loads(capsys.readouterr().out)
    database = connection.settings_dict
    binary = pg_dump_binary()
    assert binary, "no pg_dump found (Debian's postgresql package has it)"

    result = subprocess.run(
        [
            binary,
            "--host",
            database["HOST"],
            "--port",
            str(database["PORT"]),
            "--username",
            database["USER"],
            "--dbname",
            database["NAME"],
        ],
        env={**os.environ, "PGPASSWORD": database["PASSWORD"] or ""},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    dump = result.stdout
    assert RELAY_NAME in dump
    assert key["AccessKeyId"] in dump
    assert USERNAME not in dump
    assert PASSWORD not in dump
    assert key["SecretAccessKey"] not in dump
