"""A database written under one encryption key and served under another (`make run`, then
`make serve` on the same var/ database): start-up, `manage.py check` and `/readyz` name the
problem and the fix; every door answers something other than a 500; deleting a relay and
revoking or deleting an access key never decrypt."""

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core import checks as django_checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from relayapi import health
from relays import crypto
from relays.checks import encryption_keys_open_stored_secrets
from relays.models import AccessKey, AuditEntry, LoginFailure, RelayServer
from tests import signed
from tests.conftest import GreenArrowClient
from tests.factories import RelayServerFactory, UserFactory

DEVELOPMENT = crypto.development_key()
PRODUCTION = Fernet.generate_key().decode()
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fresh_readiness_samples():
    health.key_checks.clear()
    yield
    health.key_checks.clear()


@pytest.fixture
def make_run_database(db, settings):
    """What `make run` left: a superuser, a relay with credentials, one without, and an access
    key, all under the development key; then served like `make serve` (another key)."""
    settings.DEBUG, settings.RELAYAPI_ENCRYPTION_KEYS = True, [DEVELOPMENT]
    UserFactory(username="admin", is_superuser=True)
    stored = {
        "with_auth": RelayServerFactory(name="with-auth", with_auth=True),
        "no_auth": RelayServerFactory(name="no-auth"),
        "key": signed.new_key("admin"),
    }
    settings.DEBUG, settings.RELAYAPI_ENCRYPTION_KEYS = False, [PRODUCTION]
    return stored


COLUMNS = (
    "relays_relayserver.destination_username, relays_relayserver.destination_password, "
    "relays_accesskey.secret"
)
FIX_WITHOUT_KEY = (
    f"stored secrets ({COLUMNS}) cannot be decrypted with any key of RELAYAPI_ENCRYPTION_KEY: "
    "the stored values were written under the development key (`make run`, DEBUG with "
    "RELAYAPI_ENCRYPTION_KEY unset); keep them by listing it after the current key, "
    "RELAYAPI_ENCRYPTION_KEY=<current key>,<development key>, then run "
    "`manage.py rotate_encryption_key` and drop the old key (`manage.py check` prints the "
    "development key)"
)


def test_check_names_the_development_key_and_how_to_keep_the_data(make_run_database):
    warnings = encryption_keys_open_stored_secrets()

    assert [(w.level, w.id) for w in warnings] == [(django_checks.WARNING, "relays.W001")]
    assert warnings[0].msg == (
        f"stored secrets ({COLUMNS}) cannot be decrypted with any key of "
        "RELAYAPI_ENCRYPTION_KEY: the stored values were written under the development key "
        "(`make run`, DEBUG with RELAYAPI_ENCRYPTION_KEY unset); keep them by listing it after "
        f"the current key, RELAYAPI_ENCRYPTION_KEY=<current key>,{DEVELOPMENT}, then run "
        "`manage.py rotate_encryption_key` and drop the old key"
    )
    assert PRODUCTION not in warnings[0].msg


def test_the_fix_the_check_names_works(make_run_database, settings):
    settings.RELAYAPI_ENCRYPTION_KEYS = [PRODUCTION, DEVELOPMENT]
    assert encryption_keys_open_stored_secrets() == []
    call_command("rotate_encryption_key", stdout=io.StringIO())
    settings.RELAYAPI_ENCRYPTION_KEYS = [PRODUCTION]

    assert encryption_keys_open_stored_secrets() == []
    assert RelayServer.objects.get(name="with-auth").destination_password == "mysecret"


def test_check_with_a_dropped_key_says_to_add_the_old_key_back(db, settings):
    settings.RELAYAPI_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    RelayServerFactory(with_auth=True)
    settings.RELAYAPI_ENCRYPTION_KEYS = [PRODUCTION]

    (warning,) = encryption_keys_open_stored_secrets()

    assert warning.msg == (
        "stored secrets (relays_relayserver.destination_username, "
        "relays_relayserver.destination_password) cannot be decrypted with any key of "
        "RELAYAPI_ENCRYPTION_KEY: the stored values were written under a key "
        "RELAYAPI_ENCRYPTION_KEY no longer lists (dropped before `manage.py "
        "rotate_encryption_key` moved everything to the newest one?); add it after the current "
        "key, RELAYAPI_ENCRYPTION_KEY=<current key>,<old key>, then run "
        "`manage.py rotate_encryption_key` and drop the old key"
    )


def test_check_in_debug_without_a_key_names_the_development_key_not_the_setting(db, settings):
    RelayServerFactory(with_auth=True)  # under the test settings' key, as `make serve` would
    settings.DEBUG = True
    settings.RELAYAPI_ENCRYPTION_KEYS = [
        crypto.deployment.derived_fernet_key(crypto.KEY_LABEL, settings.SECRET_KEY)
    ]

    (warning,) = encryption_keys_open_stored_secrets()

    assert warning.msg == (
        "stored secrets (relays_relayserver.destination_username, "
        "relays_relayserver.destination_password) cannot be decrypted with the development key "
        "(RELAYAPI_ENCRYPTION_KEY is unset): this DEBUG server has RELAYAPI_ENCRYPTION_KEY unset "
        "and uses the development key derived from SECRET_KEY, but the stored values were "
        "written under another key (by `make serve`?): set RELAYAPI_ENCRYPTION_KEY to that key, "
        "or use another database for development"
    )


def test_check_is_silent_when_the_keys_open_everything_or_nothing_is_stored(db, settings):
    assert encryption_keys_open_stored_secrets() == []
    RelayServerFactory(with_auth=True)
    assert encryption_keys_open_stored_secrets() == []


def test_manage_py_check_prints_the_problem(make_run_database):
    err = io.StringIO()
    call_command("check", stderr=err, stdout=io.StringIO())

    assert "(relays.W001) stored secrets" in err.getvalue()
    assert DEVELOPMENT in err.getvalue()


def test_readyz_is_503_naming_the_problem_and_the_fix_without_a_key(make_run_database):
    response = Client().get("/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "problem": FIX_WITHOUT_KEY}


def test_readyz_samples_the_keys_once_per_process_for_a_while(
    make_run_database, settings, django_assert_max_num_queries
):
    settings.RELAYAPI_ENCRYPTION_KEYS = [PRODUCTION, DEVELOPMENT]
    assert Client().get("/readyz").status_code == 200
    with django_assert_max_num_queries(2):  # the migrations only: the sample is kept
        assert Client().get("/readyz").json() == {"status": "ok"}


def test_greenarrow_get_is_a_503_naming_the_fix_while_list_and_delete_work(make_run_database):
    admin = GreenArrowClient("admin")
    relay = make_run_database["with_auth"]

    got = admin.get(f"/relay_servers/{relay.pk}")
    listed = admin.get("/relay_servers")
    deleted = admin.delete(f"/relay_servers/{relay.pk}")

    message = (
        "relays_relayserver.destination_username cannot be decrypted with any key of "
        "RELAYAPI_ENCRYPTION_KEY: the stored values were written under a key "
        "RELAYAPI_ENCRYPTION_KEY no longer lists (dropped before `manage.py "
        "rotate_encryption_key` moved everything to the newest one?); add it after the current "
        "key, RELAYAPI_ENCRYPTION_KEY=<current key>,<old key>, then run "
        "`manage.py rotate_encryption_key` and drop the old key"
    )
    assert got.status_code == 503
    assert got.json() == {
        "success": False,
        "data": None,
        "error_code": "internal_error",
        "error_messages": [message],
    }
    assert listed.status_code == 200  # the list shows no credentials: it decrypts none
    assert deleted.status_code == 200
    assert deleted.json() == {
        "success": True,
        "data": {},
        "error_code": None,
        "error_messages": None,
    }
    assert not RelayServer.objects.filter(pk=relay.pk).exists()
    entry = AuditEntry.objects.get(action=AuditEntry.Action.DELETE, record_id=relay.pk)
    assert entry.before["destination_username"] == "(redacted)"
    assert entry.before["destination_password"] == "(redacted)"
    assert entry.before["name"] == "with-auth"


def test_deleting_a_relay_without_credentials_keeps_them_null_in_the_audit_log(make_run_database):
    relay = make_run_database["no_auth"]

    assert GreenArrowClient("admin").delete(f"/relay_servers/{relay.pk}").status_code == 200

    entry = AuditEntry.objects.get(action=AuditEntry.Action.DELETE, record_id=relay.pk)
    assert entry.before["destination_username"] is None
    assert entry.before["destination_password"] is None


def test_mail_manager_refuses_the_undecryptable_key_with_a_403_not_counted(make_run_database):
    answer = signed.call(make_run_database["key"], "ListRelays")

    assert answer.status_code == 403
    body = json.loads(answer.content)
    assert body["__type"] == "com.amazonaws.mailmanager#UnrecognizedClientException"
    assert body["Message"].startswith(
        "the signature cannot be checked: relays_accesskey.secret cannot be decrypted with any "
        "key of RELAYAPI_ENCRYPTION_KEY"
    )
    assert not LoginFailure.objects.exists()


def test_mail_manager_relay_read_is_a_decryption_failure_400_not_a_500(make_run_database):
    UserFactory(username="mm", is_superuser=True)
    key = signed.new_key("mm")  # under the new key: it signs
    relay = make_run_database["with_auth"]

    got = signed.call(key, "GetRelay", {"RelayId": relay.relay_id})

    assert got.status_code == 400
    assert got["X-Amzn-Errortype"] == "DecryptionFailure"
    assert json.loads(got.content)["__type"] == "com.amazonaws.mailmanager#DecryptionFailure"
    assert "rotate_encryption_key" in json.loads(got.content)["Message"]


def test_the_commands_list_and_revoke_a_key_they_cannot_decrypt(make_run_database):
    key_id = make_run_database["key"]["AccessKeyId"]
    out = io.StringIO()

    call_command("list_access_keys", stdout=out)
    listed = out.getvalue()
    call_command("revoke_access_key", key_id, stdout=out)

    assert key_id in listed and "admin" in listed
    assert out.getvalue().endswith(f"revoked {key_id} (admin)\n")
    assert AccessKey.objects.filter(access_key_id=key_id, is_active=False).exists()
    entry = AuditEntry.objects.get(record_type="accesskey", action=AuditEntry.Action.UPDATE)
    assert entry.before["secret"] == entry.after["secret"] == "(redacted)"
    assert (entry.before["is_active"], entry.after["is_active"]) == (True, False)


def test_render_postfix_stops_with_the_fix_not_a_traceback(make_run_database, tmp_path):
    with pytest.raises(CommandError, match=r"^nothing written: relays_relayserver\.destination_"):
        call_command("render_postfix", "--out", str(tmp_path / "out"))


def test_the_admin_lists_shows_revokes_and_deletes_an_undecryptable_key(
    make_run_database, settings
):
    browser = Client()
    browser.login(username="admin", password="pw")
    key = AccessKey.objects.defer("secret").get()
    keys = "/admin/relays/accesskey/"

    assert browser.get(keys).status_code == 200
    assert browser.get(f"{keys}{key.pk}/change/").status_code == 200
    deactivated = browser.post(
        keys, {"action": "deactivate", "_selected_action": [key.pk], "index": 0}
    )
    assert deactivated.status_code == 302
    assert AccessKey.objects.filter(pk=key.pk, is_active=False).exists()
    assert browser.get(f"{keys}{key.pk}/delete/").status_code == 200
    assert browser.post(f"{keys}{key.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not AccessKey.objects.filter(pk=key.pk).exists()
    entry = AuditEntry.objects.get(record_type="accesskey", action=AuditEntry.Action.DELETE)
    assert entry.before["secret"] == "(redacted)"


def test_the_development_key_is_the_one_settings_derive_in_debug():
    env = {k: v for k, v in os.environ.items() if k == "PATH" or k.startswith(("PYTHON", "LANG"))}
    script = (
        "import django, json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'relayapi.settings'; "
        "from django.conf import settings; print(json.dumps(settings.RELAYAPI_ENCRYPTION_KEYS))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**env, "DEBUG": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [DEVELOPMENT]


def test_mail_manager_deletes_a_relay_it_cannot_decrypt(make_run_database):
    UserFactory(username="mm", is_superuser=True)
    key = signed.new_key("mm")
    relay = make_run_database["with_auth"]

    deleted = signed.call(key, "DeleteRelay", {"RelayId": relay.relay_id})

    assert deleted.status_code == 200, deleted.content
    assert not RelayServer.objects.filter(pk=relay.pk).exists()


def test_the_admin_says_why_it_cannot_show_a_relay_and_still_deletes_it(make_run_database):
    browser = Client()
    browser.login(username="admin", password="pw")
    relay = make_run_database["with_auth"]
    url = f"/admin/relays/relayserver/{relay.pk}/"

    change = browser.get(f"{url}change/", follow=True)
    confirm = browser.get(f"{url}delete/")
    deleted = browser.post(f"{url}delete/", {"post": "yes"})

    assert change.status_code == 200
    shown = [str(m) for m in change.context["messages"]]
    assert any("rotate_encryption_key" in m and "It can still be deleted." in m for m in shown)
    assert confirm.status_code == 200
    assert deleted.status_code == 302
    assert not RelayServer.objects.filter(pk=relay.pk).exists()
