"""More app servers, one database: two gunicorn instances (each started by
deploy/entrypoint.sh, at the same time) on different ports against one PostgreSQL database.
Whatever one instance hands out (page tokens, ClientTokens) the other honours, and the database,
not a process, decides races between them.

The servers use the test settings (fast password hashing): the subject here is the state the
instances share, not the password check.
"""

import contextlib
import json
import threading
from dataclasses import dataclass

import psycopg
import pytest

from tests.e2e.conftest import (
    Process,
    app_env,
    basic,
    create_access_key,
    create_superuser,
    mailmanager,
    manage,
    request,
    start_pair,
)

pytestmark = pytest.mark.postgresql

GA = "/ga/api/v3/eng"
RELAYS = 250


@dataclass
class Pair:
    a: Process
    b: Process
    database_url: str
    auth: dict
    access_key: dict
    relay_ids: list


@pytest.fixture(scope="module")
def pair(database_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("two-instances")
    env = app_env(database_url, tmp / "var", DJANGO_SETTINGS_MODULE="relayapi.test_settings")
    with contextlib.ExitStack() as running:
        a, b = start_pair(running, env, tmp)

        username, password = create_superuser(env)
        relay_ids = json.loads(
            manage(
                env,
                "shell",
                "--no-imports",
                "-c",
                "import json; from tests.factories import RelayServerFactory; "
                f"print(json.dumps([r.pk for r in RelayServerFactory.create_batch({RELAYS})]))",
            )
        )
        yield Pair(
            a=a,
            b=b,
            database_url=database_url,
            auth=basic(username, password),
            access_key=create_access_key(env, username),
            relay_ids=relay_ids,
        )


def test_a_list_walked_across_both_instances_returns_every_relay_once(pair):
    seen, token, instances = [], None, []
    for turn in range(10):
        server = (pair.a, pair.b)[turn % 2]
        query = f"?page_token={token}" if token else ""
        answer = request(f"{server.url}{GA}/relay_servers{query}", headers=pair.auth)
        assert answer.status == 200, answer.body
        data = answer.json()["data"]
        seen += [relay["id"] for relay in data["relay_servers"]]
        instances.append(server.name)
        token = data["pagination"]["next_page_token"]
        if token is None:
            break

    assert instances == ["a", "b", "a"]
    assert sorted(seen) == sorted(pair.relay_ids)
    assert len(seen) == len(set(seen)) == RELAYS


def test_a_client_token_retry_on_the_other_instance_returns_the_first_relay(pair):
    params = {
        "RelayName": "token-relay",
        "ServerName": "smtp.example.com",
        "ServerPort": 587,
        "Authentication": {"NoAuthentication": {}},
        "ClientToken": "retry-across-instances",
    }
    on_a = mailmanager(pair.a.url, pair.access_key)
    on_b = mailmanager(pair.b.url, pair.access_key)

    first = on_a.create_relay(**params)["RelayId"]
    retried = on_b.create_relay(**params)["RelayId"]

    assert retried == first
    assert on_b.get_relay(RelayId=first)["RelayName"] == "token-relay"
    assert names_like(pair, "token-relay") == 1


def create_on(server, name, auth, results, barrier):
    body = json.dumps(
        {
            "relay_server": {
                "name": name,
                "source_ip": {"ip": "127.0.0.2", "hostname": "out.example.com"},
                "destination": {"hostname": "smtp.example.com", "port": 25},
                "throttle_limits": {"max_concurrent_connections": 1, "max_messages_per_hour": 1},
            }
        }
    ).encode()
    barrier.wait(timeout=10)
    answer = request(f"{server.url}{GA}/relay_servers", "POST", body=body, headers=auth)
    results[name] = (answer.status, answer.json()["error_code"])


@pytest.mark.parametrize("round_", range(5))
def test_concurrent_creates_of_one_name_in_two_cases_on_two_instances_one_wins(pair, round_):
    results, barrier = {}, threading.Barrier(2)
    first, second = (pair.a, pair.b) if round_ % 2 == 0 else (pair.b, pair.a)
    threads = [
        threading.Thread(
            target=create_on, args=(first, f"Race-{round_}", pair.auth, results, barrier)
        ),
        threading.Thread(
            target=create_on, args=(second, f"race-{round_}", pair.auth, results, barrier)
        ),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(results.values()) == [(200, None), (400, "validation_failed")]
    assert names_like(pair, f"race-{round_}") == 1


def names_like(pair, name):
    """How many VirtualMTAs bear `name`, in any case (straight from the database)."""
    with psycopg.connect(pair.database_url) as conn:
        return conn.execute(
            "SELECT count(*) FROM relays_virtualmta WHERE lower(name) = lower(%s)", [name]
        ).fetchone()[0]
