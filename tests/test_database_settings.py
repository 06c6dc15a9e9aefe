"""The PostgreSQL connection settings keep an outage short: a dead host or a partition fails in
seconds, and with DATABASE_POOL a request waits 5 s for a connection, then answers 503."""

from relayapi.settings import database_from_env

URL = "postgres://relayapi:secret@db.example:5432/relayapi"


def test_a_dead_database_host_fails_within_seconds(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", URL)
    monkeypatch.delenv("DATABASE_POOL", raising=False)

    options = database_from_env()["OPTIONS"]

    assert options["connect_timeout"] == 5
    assert options["tcp_user_timeout"] == 10_000
    assert "pool" not in options


def test_the_pool_hands_out_a_connection_within_5_seconds_or_gives_up(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", URL)
    monkeypatch.setenv("DATABASE_POOL", "1")

    config = database_from_env()

    assert config["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 4, "timeout": 5}
    assert config["CONN_MAX_AGE"] == 0
