"""Request bodies the fault runs send, in the shapes the README documents."""

import random

DOMAINS = ["[*.]example.com", "*.example.net", "example.org", "[*.]mail.example.io"]


def relay_server(name, redirect=None, port=25):
    body = {
        "name": name,
        "source_ip": {"ip": "127.0.0.2", "hostname": "out.reliability.example.com"},
        "destination": {"hostname": "smtp.reliability.example.net", "port": port},
        "throttle_limits": {"max_concurrent_connections": 2, "max_messages_per_hour": 120},
    }
    if redirect is not None:
        body["redirect"] = {"id": redirect}
    return {"relay_server": body}


def ip_address(name, number, redirect=None):
    body = {
        "name": name,
        "ip": f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}",
        "hostname": f"out-{number}.reliability.example.com",
    }
    if redirect is not None:
        body["redirect"] = {"id": redirect}
    return {"ip_address": body}


def targets(ids):
    return [{"virtual_mta": {"id": i}, "portion_of_mail": random.randint(1, 100)} for i in ids]


def routing_rule(name, default_ids, override_ids=None):
    """A rule delivering through `default_ids`, and, when given, one domain override of two
    domains through `override_ids`: a write of many rows (base, child, override, domains,
    targets) that must land whole or not at all."""
    body = {
        "name": name,
        "default": {"randomization_type": "random", "deliver_through": targets(default_ids)},
    }
    if override_ids:
        body["domain_overrides"] = [
            {
                "domains": random.sample(DOMAINS, 2),
                "randomization_type": "message_constant",
                "deliver_through": targets(override_ids),
            }
        ]
    return {"routing_rule": body}


def mm_relay(name, port=587):
    return {
        "RelayName": name,
        "ServerName": "smtp.reliability.example.org",
        "ServerPort": port,
        "Authentication": {"NoAuthentication": {}},
    }
