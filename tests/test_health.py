"""/healthz says the process answers; /readyz that the database answers with the whole schema
(and that the stored secrets open with the configured keys: tests/test_key_mismatch.py)."""

from django.db import OperationalError, connection
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client

from relayapi import health


def test_healthz_answers_without_database_or_credentials():
    # No `db` fixture: any query here would fail the test.
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}


def test_readyz_is_ok_once_every_migration_is_applied(db, django_assert_max_num_queries):
    health.key_checks.clear()
    with django_assert_max_num_queries(3):  # the migrations, and one sample of the secrets
        response = Client().get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_503_naming_a_migration_not_applied(db):
    latest = MigrationRecorder(connection).migration_qs.filter(app="relays").order_by("name").last()
    latest.delete()

    response = Client().get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "problem": f"1 migration(s) not applied: relays.{latest.name}",
    }


def test_readyz_is_503_when_the_database_does_not_answer(db, monkeypatch):
    def refuse(self):
        raise OperationalError('connection to server at "db.internal" failed')

    monkeypatch.setattr(health.MigrationRecorder, "applied_migrations", refuse)

    response = Client().get("/readyz")

    assert response.status_code == 503
    # The reason stays in the log: the endpoint answers anyone.
    assert response.json() == {"status": "unavailable", "problem": "database unreachable"}
