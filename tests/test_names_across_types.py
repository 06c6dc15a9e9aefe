"""Names are unique case-insensitively across IP addresses, relay servers and routing rules."""

import pytest

from tests.conftest import error, relay_payload
from tests.factories import IpAddressFactory, RelayServerFactory, RoutingRuleFactory


def create(admin, kind, name, target):
    bodies = {
        "relay_server": relay_payload(name=name),
        "ip_address": {
            "ip_address": {"name": name, "ip": "10.0.0.1", "hostname": "out.example.com"}
        },
        "routing_rule": {
            "routing_rule": {
                "name": name,
                "default": {
                    "randomization_type": "random",
                    "deliver_through": [{"virtual_mta": {"id": target.id}, "portion_of_mail": 1}],
                },
            }
        },
    }
    return admin.post(f"/{kind}s" if kind != "ip_address" else "/ip_addresses", bodies[kind])


FACTORIES = {
    "relay_server": RelayServerFactory,
    "ip_address": IpAddressFactory,
    "routing_rule": RoutingRuleFactory,
}


@pytest.mark.parametrize("existing_kind", FACTORIES)
@pytest.mark.parametrize("new_kind", FACTORIES)
def test_a_name_taken_by_any_type_blocks_every_type(admin, unchanged, existing_kind, new_kind):
    target = IpAddressFactory(name="some-target")
    existing = FACTORIES[existing_kind](name="Relay-A")

    with unchanged():
        response = create(admin, new_kind, "relay-a", target)

    assert response.json() == error(
        "validation_failed",
        f"name 'relay-a' is already used by {existing_kind} {existing.id} (Relay-A)",
    )
