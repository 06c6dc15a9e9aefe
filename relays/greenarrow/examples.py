"""Example bodies for the OpenAPI schema: the vendor's own examples (GreenArrow's Relay Servers
page, shared/spec/greenarrow-relay-servers.txt, verbatim), and for the other types the shapes
its other pages show (IP addresses, routing rules, the VirtualMTAs list), as this server answers
them. tests/test_openapi_schema.py validates each against the schema of its operation."""

from drf_spectacular.utils import OpenApiExample


def ok(data):
    return {"success": True, "data": data, "error_code": None, "error_messages": None}


def request(name, value, summary=""):
    return OpenApiExample(name, value=value, summary=summary, request_only=True)


def response(name, value, summary=""):
    return OpenApiExample(name, value=ok(value), summary=summary, response_only=True)


def _pagination(records):
    return {
        "page": 0,
        "per_page": 100,
        "num_pages": 1,
        "num_records": records,
        "next_page_token": None,
    }


# --- Relay servers: the vendor's examples, verbatim -------------------------------------------

RELAY_SERVER_16 = {
    "id": 16,
    "name": "relay-1",
    "source_ip": {"ip": "127.0.0.2", "hostname": "outgoing-hostname.com"},
    "destination": {
        "hostname": "destination-hostname.com",
        "port": 26,
        "username": "myusername",
        "password": "mysecret",
    },
    "throttle_limits": {"max_concurrent_connections": 2, "max_messages_per_hour": 120},
    "redirect": None,
}

NEW_RELAY_SERVER = {
    "name": "new-relay-server",
    "source_ip": {"ip": "127.0.0.2", "hostname": "outgoing-hostname.com"},
    "destination": {
        "hostname": "destination-hostname.com",
        "port": 25,
        "username": "myusername",
        "password": "mysecret",
    },
    "throttle_limits": {"max_concurrent_connections": 2, "max_messages_per_hour": 120},
    "redirect": {"name": "ipaddr-1"},
}

UPDATED_RELAY_SERVER = {
    "name": "updated-relay-server",
    "source_ip": {"ip": "127.0.0.7", "hostname": "updated-outgoing-hostname.com"},
    "destination": {
        "hostname": "updated-destination-hostname.com",
        "port": 1025,
        "username": "updated-myusername",
        "password": "updated-mysecret",
    },
    "throttle_limits": {"max_concurrent_connections": 5, "max_messages_per_hour": 500},
    "redirect": None,
}

RELAY_SERVERS = {
    "list": [
        response(
            "RelayServers",
            {
                "relay_servers": [
                    {"id": 4, "name": "relay-1"},
                    {"id": 5, "name": "relay-2"},
                    {"id": 6, "name": "relay-3"},
                ],
                "pagination": _pagination(3),
            },
        )
    ],
    "retrieve": [response("RelayServer", {"relay_server": RELAY_SERVER_16})],
    "create": [
        request("NewRelayServer", {"relay_server": NEW_RELAY_SERVER}),
        response(
            "CreatedRelayServer",
            {
                "relay_server": {
                    "id": 26,
                    **NEW_RELAY_SERVER,
                    "redirect": {"type": "ip_address", "id": 20, "name": "ipaddr-1"},
                }
            },
        ),
    ],
    "update": [
        request("UpdatedRelayServer", {"relay_server": UPDATED_RELAY_SERVER}),
        request(
            "PortOnly",
            {"relay_server": {"destination": {"port": 2525}}},
            "A partial update: everything omitted keeps its value.",
        ),
        response("UpdatedRelayServer", {"relay_server": {"id": 29, **UPDATED_RELAY_SERVER}}),
    ],
    "destroy": [response("Deleted", {})],
}

# --- IP addresses and routing rules: the shapes of the vendor's pages --------------------------

IP_ADDRESS_12 = {
    "id": 12,
    "name": "ipaddr-1",
    "ip": "10.0.0.28",
    "hostname": "hostname-28.com",
    "delivery_paused": False,
    "redirect": None,
    "throttling_template": None,
    "default": {"max_concurrent_connections": 0, "max_messages_per_hour": 0},
}

IP_ADDRESSES = {
    "list": [
        response(
            "IpAddresses",
            {
                "ip_addresses": [{"id": 2, "name": "ipaddr-1"}, {"id": 3, "name": "ipaddr-2"}],
                "pagination": _pagination(2),
            },
        )
    ],
    "retrieve": [response("IpAddress", {"ip_address": IP_ADDRESS_12})],
    "create": [
        request(
            "NewIpAddress",
            {"ip_address": {"name": "ipaddr-1", "ip": "10.0.0.28", "hostname": "hostname-28.com"}},
        ),
        response("CreatedIpAddress", {"ip_address": IP_ADDRESS_12}),
    ],
    "update": [
        request("Pause", {"ip_address": {"delivery_paused": True}}),
        response("PausedIpAddress", {"ip_address": {**IP_ADDRESS_12, "delivery_paused": True}}),
    ],
    "destroy": [response("Deleted", {})],
}

ROUTING_RULE_6 = {
    "id": 6,
    "name": "rr-1",
    "default": {
        "randomization_type": "random",
        "deliver_through": [
            {
                "virtual_mta": {"type": "ip_address", "id": 2, "name": "ipaddr-1"},
                "portion_of_mail": 30.0,
            },
            {
                "virtual_mta": {"type": "relay_server", "id": 4, "name": "my-relay-1"},
                "portion_of_mail": 70.0,
            },
        ],
    },
    "domain_overrides": [
        {
            "id": 1,
            "domains": ["[*.]example.com"],
            "randomization_type": "message_constant",
            "deliver_through": [
                {
                    "virtual_mta": {"type": "relay_server", "id": 4, "name": "my-relay-1"},
                    "portion_of_mail": 100.0,
                }
            ],
        }
    ],
}

ROUTING_RULES = {
    "list": [
        response(
            "RoutingRules",
            {"routing_rules": [{"id": 6, "name": "rr-1"}], "pagination": _pagination(1)},
        )
    ],
    "retrieve": [response("RoutingRule", {"routing_rule": ROUTING_RULE_6})],
    "create": [
        request(
            "NewRoutingRule",
            {
                "routing_rule": {
                    "name": "rr-1",
                    "default": {
                        "randomization_type": "random",
                        "deliver_through": [
                            {"virtual_mta": {"id": 2}, "portion_of_mail": 30.0},
                            {"virtual_mta": {"name": "my-relay-1"}, "portion_of_mail": 70.0},
                        ],
                    },
                    "domain_overrides": [
                        {
                            "domains": ["[*.]example.com"],
                            "randomization_type": "message_constant",
                            "deliver_through": [
                                {"virtual_mta": {"id": 4}, "portion_of_mail": 100.0}
                            ],
                        }
                    ],
                }
            },
        ),
        response("CreatedRoutingRule", {"routing_rule": ROUTING_RULE_6}),
    ],
    "update": [
        request(
            "RandomizationOnly",
            {"routing_rule": {"default": {"randomization_type": "message_constant"}}},
            "A partial update: the default route keeps its targets.",
        ),
        response("UpdatedRoutingRule", {"routing_rule": ROUTING_RULE_6}),
    ],
    "destroy": [response("Deleted", {})],
}

BY_RESOURCE = {
    "relay_server": RELAY_SERVERS,
    "ip_address": IP_ADDRESSES,
    "routing_rule": ROUTING_RULES,
}

# The VirtualMTAs page's list: ids 2 to 6, every type.
VIRTUAL_MTAS_LIST = [
    response(
        "VirtualMtas",
        {
            "virtual_mtas": [
                {"type": "ip_address", "id": 2, "name": "ipaddr-1"},
                {"type": "ip_address", "id": 3, "name": "ipaddr-2"},
                {"type": "relay_server", "id": 4, "name": "my-relay-1"},
                {"type": "relay_server", "id": 5, "name": "my-relay-2"},
                {"type": "routing_rule", "id": 6, "name": "rr-1"},
            ],
            "pagination": _pagination(5),
        },
    )
]
