"""Brute force is stopped at all three doors: after 10 refused logins in a minute from one
address, that (username, address) pair gets 429 until the minute has passed, without any
password being checked; the same user from another address still gets in, and successful logins
are never counted. After 30 in a minute from anywhere, the account's password is not checked
afresh at the password doors, while credentials verified before keep working. IPv6 addresses
count per /64."""

import json
from datetime import timedelta
from unittest import mock

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from django.contrib.auth.hashers import MD5PasswordHasher
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from relays import lockout
from relays.greenarrow.authentication import verified
from relays.models import LoginFailure
from tests import signed
from tests.conftest import GA, GreenArrowClient, error
from tests.factories import UserFactory

ATTACKER = "198.51.100.7"
ELSEWHERE = "203.0.113.9"
BOTNET = [f"192.0.2.{n}" for n in range(1, 6)]
LOCKED = "Too many failed logins from this address. Try again in 60 seconds."
ACCOUNT_LOCKED = "Too many failed logins for this account. Try again in 60 seconds."
ADMIN_LOCKED = "Too many failed logins from your address. Try again in 60 seconds."
ADMIN_ACCOUNT_LOCKED = "Too many failed logins for this account. Try again in 60 seconds."


class CountingHasher(MD5PasswordHasher):
    """The test suite's hasher, counting every password it hashes or checks."""

    calls = 0

    def encode(self, password, salt):
        CountingHasher.calls += 1
        return super().encode(password, salt)


@pytest.fixture
def clock(monkeypatch):
    """Frozen time; clock.advance(seconds) moves it on."""

    class Clock:
        now = timezone.now()

        def advance(self, seconds):
            self.now += timedelta(seconds=seconds)

    frozen = Clock()
    monkeypatch.setattr("django.utils.timezone.now", lambda: frozen.now)
    return frozen


@pytest.fixture
def sam(db):
    return UserFactory(username="sam", perms=["view_relayserver"])


# --- GreenArrow (HTTP Basic) ---


def basic(username="sam", password="pw", address=ATTACKER):
    return GreenArrowClient(username, password).client.get(
        f"{GA}/relay_servers", REMOTE_ADDR=address
    )


def fail_basic(times, username="sam", address=ATTACKER):
    statuses = {basic(username, "wrong", address).status_code for _ in range(times)}
    assert statuses == {401}


def test_basic_the_11th_attempt_is_429_in_the_envelope_with_retry_after(sam, clock):
    fail_basic(10)

    wrong, right = basic(password="wrong"), basic()

    for response in (wrong, right):
        assert response.status_code == 429
        assert response.json() == error("invalid_request", LOCKED)
        assert response["Retry-After"] == "60"


def test_basic_nine_failures_do_not_lock_the_tenth_does(sam, clock, settings):
    settings.RELAYAPI_AUTH_CACHE_SECONDS = 0  # every login is checked and counted afresh
    fail_basic(9)
    assert basic().status_code == 200

    fail_basic(1)

    assert basic().status_code == 429


def test_basic_the_lock_ends_when_the_window_has_passed(sam, clock):
    fail_basic(10)
    clock.advance(30)
    assert basic()["Retry-After"] == "30"

    clock.advance(30)

    assert basic().status_code == 200


def test_basic_the_same_user_from_another_address_still_logs_in(sam, clock):
    fail_basic(10)

    assert basic(address=ATTACKER).status_code == 429
    assert basic(address=ELSEWHERE).status_code == 200


def test_basic_another_user_from_the_same_address_still_logs_in(sam, clock):
    UserFactory(username="alice", perms=["view_relayserver"])
    fail_basic(10)

    assert basic("alice").status_code == 200
    assert basic("sam").status_code == 429


def test_basic_an_address_trying_many_names_is_locked_for_every_name(sam, clock, settings):
    settings.RELAYAPI_LOGIN_FAILURE_ADDRESS_LIMIT = 20
    for n in range(20):
        fail_basic(1, username=f"guess-{n}")

    assert basic().status_code == 429
    assert basic(address=ELSEWHERE).status_code == 200


def test_basic_a_locked_attempt_checks_no_password(sam, clock, hashes):
    fail_basic(10)
    before = hashes()

    assert basic().status_code == 429
    assert hashes() == before
    assert basic(address=ELSEWHERE).status_code == 200
    assert hashes() == before + 1  # an attempt that is not locked is checked as usual


def test_basic_a_first_login_costs_two_queries_more_and_a_remembered_one_none(sam):
    with CaptureQueriesContext(connection) as first:
        assert basic().status_code == 200
    with CaptureQueriesContext(connection) as remembered:
        assert basic().status_code == 200

    extra = [q["sql"] for q in first.captured_queries if "relays_loginfailure" in q["sql"]]
    assert len(first) == len(remembered) + 2  # the address's failures, the account's
    assert len(extra) == 2 and all(sql.startswith("SELECT") for sql in extra)
    assert not any("relays_loginfailure" in q["sql"] for q in remembered.captured_queries)


def test_basic_successful_logins_are_not_counted(sam, clock, settings):
    settings.RELAYAPI_AUTH_CACHE_SECONDS = 0  # every login checks the password
    statuses = {basic().status_code for _ in range(15)}
    fail_basic(9)

    assert statuses == {200}
    assert LoginFailure.objects.count() == 9
    assert basic().status_code == 200  # 15 successes and 9 failures: under the limit
    fail_basic(1)
    assert basic().status_code == 429


def test_basic_a_non_staff_user_with_the_right_password_counts_like_a_wrong_one(db, clock):
    UserFactory(username="outsider", is_staff=False)
    statuses = [basic("outsider").status_code for _ in range(11)]

    assert statuses == [401] * 10 + [429]


def test_basic_a_remembered_password_is_not_locked_out(sam, clock):
    """Documented choice: a request whose credentials this process verified moments ago (the
    cache) skips the count. Only the right password finds an entry."""
    assert basic().status_code == 200
    fail_basic(10)

    assert basic().status_code == 200
    verified.clear()
    assert basic().status_code == 429


def test_basic_forwarded_for_is_ignored_unless_the_proxy_is_trusted(sam, clock, settings):
    settings.RELAYAPI_AUTH_CACHE_SECONDS = 0

    def from_behind(client_address, password="pw"):
        return GreenArrowClient("sam", password).client.get(
            f"{GA}/relay_servers", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=client_address
        )

    for n in range(10):  # an untrusted client cannot dodge the count with a new header each time
        assert from_behind(f"192.0.2.{n}", "wrong").status_code == 401
    assert from_behind("192.0.2.99").status_code == 429

    settings.RELAYAPI_TRUSTED_PROXIES = ["127.0.0.1"]
    assert from_behind(ELSEWHERE).status_code == 200
    for _ in range(10):
        from_behind(ATTACKER, "wrong")
    assert from_behind(ATTACKER).status_code == 429
    assert from_behind(ELSEWHERE).status_code == 200


# --- one account from many addresses ---


def test_basic_an_account_tried_from_many_addresses_is_locked_after_30(sam, clock):
    """The finding: 50 wrong passwords from 5 addresses in a minute were never throttled (each
    address stayed at its pair limit of 10)."""
    statuses = [basic(password="wrong", address=a).status_code for a in BOTNET for _ in range(10)]

    assert statuses == [401] * 30 + [429] * 20
    assert LoginFailure.objects.count() == 30  # refused by the lock: not counted


def test_basic_a_locked_account_refuses_a_fresh_check_from_anywhere(sam, clock, hashes):
    for address in BOTNET[:3]:
        fail_basic(10, address=address)
    before = hashes()

    response = basic(address=ELSEWHERE)

    assert response.status_code == 429
    assert response.json() == error("invalid_request", ACCOUNT_LOCKED)
    assert response["Retry-After"] == "60"
    assert hashes() == before
    assert basic("alice", "wrong", address=ELSEWHERE).status_code == 401  # other names: as usual


def test_basic_a_remembered_password_works_while_its_account_is_locked(sam, clock):
    """The documented choice: the real user keeps working while attackers elsewhere hold the
    account's lock, when this process verified their password before (no hash needed)."""
    assert basic(address=ELSEWHERE).status_code == 200
    for address in BOTNET[:3]:
        fail_basic(10, address=address)

    assert basic(address=ELSEWHERE).status_code == 200
    assert basic(address=BOTNET[4]).status_code == 200  # the cache is keyed by credentials
    verified.clear()  # another worker, or the entry expired: a fresh check
    assert basic(address=ELSEWHERE).json() == error("invalid_request", ACCOUNT_LOCKED)


def test_basic_the_account_lock_ends_with_the_window(sam, clock, settings):
    settings.RELAYAPI_LOGIN_FAILURE_ACCOUNT_LIMIT = 20
    fail_basic(10, address=BOTNET[0])
    clock.advance(30)
    fail_basic(10, address=BOTNET[1])

    assert basic(address=ELSEWHERE)["Retry-After"] == "30"
    clock.advance(30)
    assert basic(address=ELSEWHERE).status_code == 200


# --- IPv6 ---


def test_ipv6_addresses_count_per_64(sam, clock):
    for n in range(10):
        assert basic(password="wrong", address=f"2001:db8:1:2::{n:x}").status_code == 401

    assert basic(address="2001:db8:1:2:ffff:ffff:ffff:ffff").status_code == 429
    assert basic(address="2001:db8:1:3::1").status_code == 200
    assert set(LoginFailure.objects.values_list("address", flat=True)) == {"2001:db8:1:2::"}


def test_an_ipv4_client_over_ipv6_counts_as_its_ipv4_address(sam, clock):
    fail_basic(10, address="::ffff:198.51.100.7")

    assert basic(address=ATTACKER).status_code == 429


# --- the admin login form ---


def admin_login(username="sam", password="pw", address=ATTACKER):
    return Client().post(
        "/admin/login/",
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=address,
    )


def test_admin_the_11th_attempt_is_429_with_its_own_message(sam, clock, hashes):
    statuses = {admin_login(password="wrong").status_code for _ in range(10)}
    before = hashes()

    page = admin_login()

    assert statuses == {200}  # the form again, with Django's error
    assert page.status_code == 429
    assert page["Retry-After"] == "60"
    assert ADMIN_LOCKED in page.content.decode()
    assert hashes() == before
    assert "_auth_user_id" not in page.client.session


def test_admin_the_lock_ends_and_another_address_gets_in_meanwhile(sam, clock):
    for _ in range(10):
        admin_login(password="wrong")

    assert admin_login().status_code == 429
    assert admin_login(address=ELSEWHERE).status_code == 302
    clock.advance(60)
    assert admin_login().status_code == 302


def test_admin_a_successful_login_is_not_counted(sam, clock):
    statuses = {admin_login().status_code for _ in range(12)}
    for _ in range(9):
        admin_login(password="wrong")

    assert statuses == {302}
    assert admin_login().status_code == 302  # 12 successes and 9 failures: under the limit
    admin_login(password="wrong")
    assert admin_login().status_code == 429


def test_admin_a_locked_account_refuses_new_logins_but_not_open_sessions(sam, clock):
    session = Client()
    session.force_login(sam)
    for address in BOTNET[:3]:
        for _ in range(10):
            admin_login(password="wrong", address=address)

    page = admin_login(address=ELSEWHERE)

    assert page.status_code == 429
    assert page["Retry-After"] == "60"
    assert ADMIN_ACCOUNT_LOCKED in page.content.decode()
    assert session.get("/admin/").status_code == 200


def test_failures_at_every_door_count_together(sam, clock):
    fail_basic(5)
    for _ in range(5):
        admin_login(password="wrong")

    assert basic().status_code == 429
    assert admin_login().status_code == 429


# --- Mail Manager (SigV4) ---


@pytest.fixture
def key(db):
    UserFactory(username="boto", is_superuser=True)
    return signed.new_key("boto")


def mm_call(key, secret=None, address=ATTACKER):
    used = {**key, "SecretAccessKey": secret or key["SecretAccessKey"]}
    return signed.call(used, "ListRelays", {}, remote_addr=address)


def test_sigv4_the_11th_attempt_is_a_throttling_exception_with_retry_after(key, clock):
    refused = {mm_call(key, "x" * 40).status_code for _ in range(10)}

    response = mm_call(key)

    assert refused == {403}
    assert response.status_code == 429
    assert json.loads(response.content) == {
        "__type": "com.amazonaws.mailmanager#ThrottlingException",
        "Message": "too many failed logins from this address; try again in 60 seconds",
    }
    assert response["X-Amzn-Errortype"] == "ThrottlingException"
    assert response["Retry-After"] == "60"


def test_sigv4_a_locked_key_is_not_looked_up_or_verified(key, clock):
    for _ in range(10):
        mm_call(key, "x" * 40)

    with mock.patch("relays.mailmanager.sigv4.signature") as verification:
        assert mm_call(key).status_code == 429

    verification.assert_not_called()


def test_sigv4_the_lock_ends_and_another_address_gets_in_meanwhile(key, clock):
    for _ in range(10):
        mm_call(key, "x" * 40)

    assert mm_call(key).status_code == 429
    assert mm_call(key, address=ELSEWHERE).status_code == 200
    clock.advance(60)
    assert mm_call(key).status_code == 200


def test_sigv4_successful_calls_and_malformed_ones_are_not_counted(key, clock):
    statuses = [mm_call(key).status_code for _ in range(12)]
    headers, body = signed.sign(key, "ListRelays")
    headers["Authorization"] = "AWS4-HMAC-SHA256 garbage"
    malformed = [signed.send(headers, body).status_code for _ in range(12)]

    assert statuses == [200] * 12
    assert malformed == [403] * 12
    assert not LoginFailure.objects.exists()
    for _ in range(10):
        mm_call(key, "x" * 40)
    assert mm_call(key).status_code == 429  # while wrong signatures do count


def test_sigv4_a_key_is_not_locked_by_failures_from_many_addresses(key, clock):
    """Documented choice: an access key's secret cannot be guessed (40 random characters), so
    Mail Manager is not subject to the account limit, and knowing a key id is not enough to
    lock its owner out."""
    for address in BOTNET:
        for _ in range(10):
            mm_call(key, "x" * 40, address=address)

    assert mm_call(key, address=BOTNET[0]).status_code == 429  # that pair is locked
    assert mm_call(key, address=ELSEWHERE).status_code == 200


def boto3_client(live_server, key_id, secret):
    # No retries: boto3 retries a ThrottlingException by itself, which would hide it here.
    return boto3.client(
        "mailmanager",
        endpoint_url=live_server.url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


@pytest.mark.django_db(transaction=True)
def test_boto3_sees_a_throttling_exception_with_status_429(live_server, clock):
    UserFactory(username="admin", is_superuser=True)
    key = signed.new_key("admin")
    good = boto3_client(live_server, key["AccessKeyId"], key["SecretAccessKey"])
    bad = boto3_client(live_server, key["AccessKeyId"], "x" * 40)
    for _ in range(10):
        with pytest.raises(ClientError):
            bad.list_relays()

    with pytest.raises(ClientError) as caught:
        good.list_relays()

    assert caught.value.response["Error"]["Code"] == "ThrottlingException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert caught.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "60"


# --- the table itself ---


def test_the_table_keeps_no_username_in_clear(sam, clock):
    basic("sam", "wrong")
    basic("my-password-typed-as-name", "x")

    rows = list(LoginFailure.objects.values_list("username_digest", "address", "door"))

    assert len(rows) == 2
    assert all(len(digest) == 64 and set(digest) <= set("0123456789abcdef") for digest, *_ in rows)
    assert {(address, door) for _, address, door in rows} == {(ATTACKER, "greenarrow")}


def test_a_recorded_failure_prunes_a_bounded_batch_of_expired_ones(db, clock, monkeypatch):
    monkeypatch.setattr(lockout, "PRUNE_BATCH", 3)
    for _ in range(5):
        lockout.record_failure("old", ATTACKER, "admin")
    clock.advance(61)

    lockout.record_failure("new", ATTACKER, "admin")

    assert LoginFailure.objects.count() == 3  # 5 expired - 3 pruned + 1 new
    lockout.record_failure("new", ATTACKER, "admin")
    assert LoginFailure.objects.filter(at__lt=clock.now - timedelta(seconds=60)).count() == 0
