"""deploy/entrypoint.sh gives up on a database that does not answer, within its bound."""

import subprocess
import time

import pytest

from tests.e2e.conftest import ROOT, app_env, free_port

pytestmark = pytest.mark.postgresql


def test_the_entrypoint_stops_when_the_database_does_not_answer_in_time(tmp_path):
    nobody_listens = f"postgres://relayapi@127.0.0.1:{free_port()}/relayapi"
    env = app_env(nobody_listens, tmp_path / "var", DB_WAIT_SECONDS="1")

    started = time.monotonic()
    result = subprocess.run(
        [ROOT / "deploy" / "entrypoint.sh"], env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode != 0
    assert "entrypoint: the database did not answer within 1 s" in result.stderr
    assert time.monotonic() - started < 30
