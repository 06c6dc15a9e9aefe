import base64
import copy
import json

import boto3
import pytest
from botocore.config import Config
from django.core.management import call_command
from django.test import Client

from relays.greenarrow.examples import NEW_RELAY_SERVER
from tests.factories import UserFactory

GA = "/ga/api/v3/eng"


def pytest_collection_modifyitems(config, items):
    # Marked, not silently skipped: the reason shows in the report, and the PostgreSQL pass
    # of the test command runs these.
    from django.db import connection

    if connection.vendor != "postgresql":
        skip = pytest.mark.skip(reason="needs PostgreSQL (runs in the PostgreSQL pass)")
        for item in items:
            if "postgresql" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _empty_process_caches():
    """Each test starts with empty per-process caches: its users are new (new password hashes),
    and a rolled-back test rewinds the RecordCount versions that page starts are keyed by."""
    from relays.greenarrow.authentication import verified
    from relays.greenarrow.pagination import page_starts

    verified.clear()
    page_starts.clear()


class GreenArrowClient:
    """A GreenArrow API client as scripts use it: HTTP Basic, JSON bodies, paths under /ga/."""

    def __init__(self, username=None, password="pw"):
        headers = {}
        if username is not None:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            headers["HTTP_AUTHORIZATION"] = f"Basic {token}"
        self.client = Client(**headers)

    def call(self, method, path, body=None, *, raw=None, content_type="application/json", **extra):
        data = raw if raw is not None else (json.dumps(body) if body is not None else "")
        return self.client.generic(method, f"{GA}{path}", data, content_type=content_type, **extra)

    def get(self, path, **query):
        return self.client.get(f"{GA}{path}", query)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.call("PUT", path, body, **kw)

    def delete(self, path):
        return self.call("DELETE", path)


@pytest.fixture
def admin(db):
    """The superuser persona: may do everything."""
    UserFactory(username="admin", is_superuser=True)
    return GreenArrowClient("admin")


@pytest.fixture
def browser(db):
    """The superuser persona in a browser session, logged in to the admin."""
    UserFactory(username="admin", is_superuser=True)
    client = Client()
    client.login(username="admin", password="pw")
    return client


@pytest.fixture
def persona(db):
    """persona("viewer", perms=[...], staff=True, active=True) -> a client logged in as that user."""

    def make(username, perms=(), staff=True, active=True):
        UserFactory(username=username, perms=list(perms), is_staff=staff, is_active=active)
        return GreenArrowClient(username)

    return make


@pytest.fixture
def hashes(settings):
    """How many passwords have been hashed so far (a check hashes the candidate once), with
    the counting hasher of tests/test_brute_force.py."""
    from tests.test_brute_force import CountingHasher

    settings.PASSWORD_HASHERS = ["tests.test_brute_force.CountingHasher"]
    CountingHasher.calls = 0
    return lambda: CountingHasher.calls


@pytest.fixture
def anonymous(db):
    return GreenArrowClient()


def ok(data):
    """The success envelope around `data`."""
    return {"success": True, "data": data, "error_code": None, "error_messages": None}


def error(code, *messages):
    return {"success": False, "data": None, "error_code": code, "error_messages": list(messages)}


def relay_payload(**overrides):
    """The vendor page's create example (without its redirect), with top-level overrides."""
    record = copy.deepcopy(NEW_RELAY_SERVER)
    del record["redirect"]
    record.update(overrides)
    return {"relay_server": record}


def store_entries():
    """The audit log without the accounts' entries (relays.audit_accounts): making a test's
    users is arrangement, not the change under test."""
    from relays.models import AuditEntry

    return AuditEntry.objects.exclude(record_type__in=["user", "group"])


def db_snapshot():
    """Every row of the VirtualMTA store, to show that a refused request changed nothing."""
    from relays import models

    tables = [
        models.VirtualMta,
        models.RelayServer,
        models.IpAddress,
        models.RoutingRule,
        models.DomainOverride,
        models.OverrideDomain,
        models.DeliverThrough,
        models.DefaultVirtualMta,
    ]
    return [list(table.objects.order_by("pk").values()) for table in tables]


@pytest.fixture
def unchanged(db):
    """with unchanged(): ... asserts the block left the database exactly as it was."""
    from contextlib import contextmanager

    @contextmanager
    def check():
        before = db_snapshot()
        yield
        assert db_snapshot() == before

    return check


# --- Mail Manager (boto3 against a live server on loopback) ---


def client_for(live_server, username, capsys, **config):
    call_command("create_access_key", username)
    key = json.loads(capsys.readouterr().out)
    return boto3.client(
        "mailmanager",
        endpoint_url=live_server.url,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, **config),
    )


@pytest.fixture
def mm(live_server, capsys):
    UserFactory(username="admin", is_superuser=True)
    return client_for(live_server, "admin", capsys)


def create(mm, name="relay-a", **extra):
    params = {
        "RelayName": name,
        "ServerName": "smtp.example.com",
        "ServerPort": 587,
        "Authentication": {"NoAuthentication": {}},
        **extra,
    }
    return mm.create_relay(**params)["RelayId"]
