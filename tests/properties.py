"""What the property tests (`tests/test_properties_*.py`) share: Hypothesis settings that fit the
suite (fixed seed, no example database, no deadline), a clean database per example, and the two
API doors as small callables."""

import json
from contextlib import contextmanager

from django.db import transaction
from hypothesis import HealthCheck, settings

from tests import signed
from tests.conftest import relay_payload
from tests.factories import UserFactory

GA_PATHS = {
    "relay_server": "/relay_servers",
    "ip_address": "/ip_addresses",
    "routing_rule": "/routing_rules",
}
KINDS = list(GA_PATHS)


def examples(count):
    """`count` examples, the same ones on every run (derandomized) and on every machine."""
    return settings(
        max_examples=count,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@contextmanager
def rolled_back():
    """One Hypothesis example: whatever it writes is undone when it ends, pass or fail, so every
    example starts from the state the test set up (inside pytest-django's `db` transaction)."""
    from relays.greenarrow.pagination import page_starts

    page_starts.clear()  # keyed by RecordCount versions, which the rollback rewinds
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def ga_body(kind, name, target_id=None, **fields):
    """A valid GreenArrow create body of `kind` named `name` (a routing rule delivers through
    `target_id`)."""
    if kind == "relay_server":
        return relay_payload(name=name, **fields)
    if kind == "ip_address":
        record = {"name": name, "ip": "10.0.0.1", "hostname": "out.example.com", **fields}
        return {"ip_address": record}
    route = [{"virtual_mta": {"id": target_id}, "portion_of_mail": 1}]
    return {
        "routing_rule": {
            "name": name,
            "default": {"randomization_type": "random", "deliver_through": route},
            **fields,
        }
    }


def mm_relay(name="mm-relay", server="smtp.example.com"):
    return {
        "RelayName": name,
        "ServerName": server,
        "ServerPort": 587,
        "Authentication": {"NoAuthentication": {}},
    }


class MailManager:
    """Signed Mail Manager calls through the endpoint (botocore's signer, Django's client)."""

    def __init__(self, username="boto"):
        UserFactory(username=username, is_superuser=True)
        self.key = signed.new_key(username)

    def __call__(self, operation, params):
        """(HTTP status, decoded JSON answer)."""
        response = signed.call(self.key, operation, params)
        return response.status_code, json.loads(response.content)
