"""Brute-force counts are shared by every app server: two gunicorn instances (each with two
workers) against one PostgreSQL database; failed logins on instance A lock the pair on
instance B, the same user from another address still gets in on B, and the lock ends for both
once the failures have left the window; failures from many addresses on A lock the account for
fresh checks on B.

The instances listen on Unix sockets and trust them as their proxy
(RELAYAPI_TRUSTED_PROXIES=unix), as in production; the test connects through the sockets, as
nginx would, and names each request's client address in X-Forwarded-For.
"""

import contextlib
from dataclasses import dataclass

import psycopg
import pytest

from tests.e2e.conftest import (
    Process,
    app_env,
    basic,
    create_superuser,
    request,
    start_pair,
)

pytestmark = pytest.mark.postgresql

GA = "/ga/api/v3/eng"
ATTACKER = "198.51.100.7"
ELSEWHERE = "203.0.113.9"


@dataclass
class Pair:
    a: Process
    b: Process
    database_url: str
    env: dict
    username: str
    password: str


@pytest.fixture(scope="module")
def pair(database_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("brute-force")
    env = app_env(
        database_url,
        tmp / "var",
        DJANGO_SETTINGS_MODULE="relayapi.test_settings",
        RELAYAPI_TRUSTED_PROXIES="unix",
    )
    with contextlib.ExitStack() as running:
        a, b = start_pair(running, env, tmp, unix=True)
        username, password = create_superuser(env, "bf-admin", "bf-secret-pw")
        yield Pair(a, b, database_url, env, username, password)


def relays(server, pair, password, address, username=None):
    return request(
        f"{server.url}{GA}/relay_servers",
        headers={**basic(username or pair.username, password), "X-Forwarded-For": address},
        unix_socket=server.socket,
    )


def test_failures_on_one_instance_lock_the_pair_on_the_other(pair):
    refused = [relays(pair.a, pair, "wrong", ATTACKER).status for _ in range(10)]

    locked = relays(pair.b, pair, pair.password, ATTACKER)
    elsewhere = relays(pair.b, pair, pair.password, ELSEWHERE)

    assert refused == [401] * 10
    assert locked.status == 429
    assert locked.json()["error_code"] == "invalid_request"
    assert 0 < int(locked.headers["Retry-After"]) <= 60
    assert elsewhere.status == 200

    # The window passes (the failures are aged in the shared database): both let the user in.
    with psycopg.connect(pair.database_url) as conn:
        conn.execute("UPDATE relays_loginfailure SET at = at - interval '61 seconds'")
    assert relays(pair.b, pair, pair.password, ATTACKER).status == 200
    assert relays(pair.a, pair, pair.password, ATTACKER).status == 200


def test_failures_from_many_addresses_lock_the_account_on_the_other_instance(pair):
    username, password = create_superuser(pair.env, "bf-account", "bf-account-pw")
    botnet = [f"192.0.2.{n}" for n in range(1, 4)]
    refused = [
        relays(pair.a, pair, "wrong", address, username).status
        for address in botnet
        for _ in range(10)
    ]

    locked = relays(pair.b, pair, password, ELSEWHERE, username)

    assert refused == [401] * 30
    assert locked.status == 429
    assert locked.json()["error_messages"][0].startswith("Too many failed logins for this account.")
