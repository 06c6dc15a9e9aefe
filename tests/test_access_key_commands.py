"""`manage.py list_access_keys [USERNAME]` shows who holds which key (never a secret);
`manage.py revoke_access_key ACCESS_KEY_ID` deactivates one."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from relays.models import AccessKey
from tests import signed
from tests.factories import UserFactory


def run(*args):
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def keys(db):
    UserFactory(username="ann")
    UserFactory(username="bob")
    return signed.new_key("ann"), signed.new_key("bob")


def test_list_shows_every_key_with_its_user_state_and_creation_never_a_secret(keys):
    ann, bob = keys
    AccessKey.objects.filter(access_key_id=bob["AccessKeyId"]).update(is_active=False)

    lines = run("list_access_keys").splitlines()

    assert lines[0].split() == ["ACCESS", "KEY", "ID", "USER", "ACTIVE", "CREATED", "LAST", "USED"]
    assert [line.split()[:3] for line in lines[1:]] == [
        [ann["AccessKeyId"], "ann", "yes"],
        [bob["AccessKeyId"], "bob", "revoked"],
    ]
    created = AccessKey.objects.get(access_key_id=ann["AccessKeyId"]).created_at
    assert lines[1].split()[3] == created.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert lines[1].split()[4] == "never"
    assert ann["SecretAccessKey"] not in "\n".join(lines)


def test_list_for_one_user_shows_only_theirs(keys):
    ann, _ = keys

    lines = run("list_access_keys", "ann").splitlines()

    assert [line.split()[0] for line in lines[1:]] == [ann["AccessKeyId"]]


def test_list_for_an_unknown_user_is_an_error(db):
    with pytest.raises(CommandError, match="no user named 'ghost'"):
        run("list_access_keys", "ghost")


def test_revoke_deactivates_only_that_key(keys):
    ann, bob = keys

    out = run("revoke_access_key", ann["AccessKeyId"])

    assert out.strip() == f"revoked {ann['AccessKeyId']} (ann)"
    assert dict(AccessKey.objects.values_list("access_key_id", "is_active")) == {
        ann["AccessKeyId"]: False,
        bob["AccessKeyId"]: True,
    }


def test_revoking_twice_says_so_and_changes_nothing(keys):
    ann, _ = keys
    run("revoke_access_key", ann["AccessKeyId"])

    out = run("revoke_access_key", ann["AccessKeyId"])

    assert out.strip() == f"{ann['AccessKeyId']} (ann) was already revoked"


def test_revoking_an_unknown_key_is_an_error(keys):
    with pytest.raises(CommandError, match="no access key 'AKIANOSUCHKEY0000000'"):
        run("revoke_access_key", "AKIANOSUCHKEY0000000")
    assert AccessKey.objects.filter(is_active=True).count() == 2


def test_a_key_s_last_use_is_kept_to_the_minute_without_a_write_per_request(
    db, django_assert_num_queries
):
    UserFactory(username="ann", is_superuser=True)
    ann = signed.new_key("ann")
    assert signed.call(ann, "ListRelays").status_code == 200
    first = AccessKey.objects.get(access_key_id=ann["AccessKeyId"]).last_used_at

    # The lockout check, the key with its user, the page: no UPDATE (used under a minute ago).
    with django_assert_num_queries(3):
        assert signed.call(ann, "ListRelays").status_code == 200

    assert first is not None
    assert AccessKey.objects.get(access_key_id=ann["AccessKeyId"]).last_used_at == first
    listed = run("list_access_keys", "ann").splitlines()[1].split()
    assert listed[4] == first.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_a_refused_signature_is_not_a_use(keys):
    ann, _ = keys
    forged = {**ann, "SecretAccessKey": "x" * 40}

    assert signed.call(forged, "ListRelays").status_code == 403
    assert AccessKey.objects.get(access_key_id=ann["AccessKeyId"]).last_used_at is None
