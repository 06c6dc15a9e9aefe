"""The AWS CLI (`aws mailmanager ...`) works against RelayAPI, as the README shows."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from relays.models import RelayServer
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)
AWS = str(Path(sys.executable).parent / "aws")


def test_create_and_get_a_relay_with_the_aws_cli(live_server, capsys, tmp_path):
    UserFactory(username="cli", is_superuser=True)
    call_command("create_access_key", "cli")
    key = json.loads(capsys.readouterr().out)
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
        "AWS_DEFAULT_REGION": "us-east-1",
        # Nothing from a developer's own AWS set-up may leak in.
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
    }

    def aws(*args):
        done = subprocess.run(
            [AWS, "mailmanager", *args, "--endpoint-url", live_server.url, "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    created = aws(
        "create-relay",
        "--relay-name",
        "cli-relay",
        "--server-name",
        "smtp.example.com",
        "--server-port",
        "587",
        "--authentication",
        "NoAuthentication={}",
    )
    got = aws("get-relay", "--relay-id", created["RelayId"])

    assert (got["RelayName"], got["ServerPort"]) == ("cli-relay", 587)
    assert RelayServer.objects.get().relay_id == created["RelayId"]
