"""The requests of the bad-input matrix (see test_bad_input_matrix.py): one valid body per
operation of both APIs, the walk that finds every position in a body and the changes made at
one, and the senders (HTTP Basic through Django's test client; Mail Manager calls signed by
botocore's own SigV4 signer with any body, target, content type, scope, date or key id).

Its tests show that every base body is accepted as it is, so the one thing a row changes is
the one thing wrong with its request.
"""

import copy
import json
from datetime import UTC, datetime
from types import SimpleNamespace
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from django.test import Client

from relays.tokens import make_token
from tests import signed
from tests.test_bad_input_matrix import World, world_fixtures


def _placeholder(relay_id):
    return SimpleNamespace(id=1, relay_id=relay_id, arn=f"arn:aws:ses:us-east-1:0:x/{relay_id}")


# The bodies' shapes, without a database: what collection walks to find the positions.
SHAPE = World(
    None, None, *[_placeholder(f"rl-{n:016x}") for n in range(5)], extra={"token": "token"}
)


# --- valid bodies, one per operation --------------------------------------------------------


def _ref(vmta, type_, name):
    """A reference hash as GET answers it (type, id and name)."""
    return {"type": type_, "id": vmta.id, "name": name}


def _throttles(connections, per_hour):
    return {"max_concurrent_connections": connections, "max_messages_per_hour": per_hour}


def _relay(name, redirect):
    return {
        "relay_server": {
            "name": name,
            "source_ip": {"ip": "127.0.0.2", "hostname": "out.example.com"},
            "destination": {
                "hostname": "smtp.example.com",
                "port": 587,
                "username": "smtp-user",
                "password": "smtp-secret",
            },
            "throttle_limits": _throttles(2, 120),
            "redirect": redirect,
        }
    }


def _ip(name, address, redirect):
    return {
        "ip_address": {
            "name": name,
            "ip": address,
            "hostname": "helo-9.example.com",
            "delivery_paused": True,
            "redirect": redirect,
            "throttling_template": None,
            "default": _throttles(3, 40),
        }
    }


def _target(vmta, portion):
    return {"virtual_mta": vmta, "portion_of_mail": portion}


def _rule(name, default_target, override):
    return {
        "routing_rule": {
            "name": name,
            "default": {"randomization_type": "random", "deliver_through": [default_target]},
            "domain_overrides": [override],
        }
    }


# name -> (method, path(world), body(world)). Creates name references by name; updates send
# back what GET answers (references with type, id and name), as the README invites.
GA_OPERATIONS = {
    "POST /relay_servers": (
        "POST",
        lambda w: "/relay_servers",
        lambda w: _relay("relay-new", {"name": "ip-1"}),
    ),
    "PUT /relay_servers/{id}": (
        "PUT",
        lambda w: f"/relay_servers/{w.spare.id}",
        lambda w: _relay("relay-2b", _ref(w.ip, "ip_address", "ip-1")),
    ),
    "POST /ip_addresses": (
        "POST",
        lambda w: "/ip_addresses",
        lambda w: _ip("ip-new", "10.0.0.9", {"name": "relay-2"}),
    ),
    "PUT /ip_addresses/{id}": (
        "PUT",
        lambda w: f"/ip_addresses/{w.ip.id}",
        lambda w: _ip("ip-1b", "10.0.0.2", _ref(w.spare, "relay_server", "relay-2")),
    ),
    "POST /routing_rules": (
        "POST",
        lambda w: "/routing_rules",
        lambda w: _rule(
            "rule-new",
            _target({"name": "relay-1"}, 30),
            {
                "domains": ["[*.]example.org"],
                "randomization_type": "message_constant",
                "deliver_through": [_target({"name": "ip-1"}, 70)],
            },
        ),
    ),
    "PUT /routing_rules/{id}": (
        "PUT",
        lambda w: f"/routing_rules/{w.rule.id}",
        lambda w: _rule(
            "rule-1b",
            _target(_ref(w.relay, "relay_server", "relay-1"), 40),
            {
                "id": w.override.id,
                "domains": ["example.com", "*.example.net"],
                "randomization_type": "email_address_constant",
                "deliver_through": [_target(_ref(w.ip, "ip_address", "ip-1"), 60)],
            },
        ),
    ),
    "PUT /virtual_mtas/default": (
        "PUT",
        lambda w: "/virtual_mtas/default",
        lambda w: {"virtual_mta": _ref(w.ip, "ip_address", "ip-1")},
    ),
    "PUT /virtual_mtas/default by name": (
        "PUT",
        lambda w: "/virtual_mtas/default",
        lambda w: {"virtual_mta": {"name": "relay-1"}},
    ),
}

MM_OPERATIONS = {
    "CreateRelay": lambda w: {
        "ClientToken": "token-1",
        "RelayName": "mm-relay",
        "ServerName": "smtp.example.com",
        "ServerPort": 587,
        "Authentication": {
            "SecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:smtp-creds"
        },
        "Tags": [{"Key": "team", "Value": "mail"}],
    },
    "UpdateRelay": lambda w: {
        "RelayId": w.relay.relay_id,
        "RelayName": "relay-1b",
        "ServerName": "smtp2.example.com",
        "ServerPort": 2525,
        "Authentication": {"NoAuthentication": {}},
    },
    "GetRelay": lambda w: {"RelayId": w.relay.relay_id},
    "DeleteRelay": lambda w: {"RelayId": w.spare.relay_id},
    "ListRelays": lambda w: {"PageSize": 10, "NextToken": w.extra["token"]},
    "TagResource": lambda w: {
        "ResourceArn": w.relay.arn,
        "Tags": [{"Key": "env", "Value": "prod"}],
    },
    "UntagResource": lambda w: {"ResourceArn": w.relay.arn, "TagKeys": ["team"]},
    "ListTagsForResource": lambda w: {"ResourceArn": w.relay.arn},
}


def mm_body(world, operation):
    """The operation's valid body (ListRelays' NextToken made on first use: it needs the
    settings' SECRET_KEY)."""
    if operation == "ListRelays" and "token" not in world.extra:
        world.extra["token"] = make_token("mailmanager.relays", world.ip.id, 0)
    return MM_OPERATIONS[operation](world)


# --- positions in a body, and bodies changed at one position --------------------------------


def positions(value, path=()):
    """(kind, path) of every position of a JSON value: each object key ("key"), string
    ("string") and integer ("integer"; booleans are not integers), depth first."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield "key", (*path, key)
            yield from positions(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from positions(item, (*path, index))
    elif isinstance(value, str):
        yield "string", path
    elif isinstance(value, int) and not isinstance(value, bool):
        yield "integer", path


def dotted(path):
    """('routing_rule', 'default', 'deliver_through', 0, 'virtual_mta') as the APIs name it:
    routing_rule.default.deliver_through[0].virtual_mta."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text


def value_at(body, path):
    for part in path:
        body = body[part]
    return body


def _insert(text, character):
    return text[:1] + character + text[1:]


def with_string(body, path, character):
    """The body with `character` inside the string at `path`, as JSON (escaped)."""
    body = copy.deepcopy(body)
    value_at(body, path[:-1])[path[-1]] = _insert(value_at(body, path), character)
    return json.dumps(body).encode()


def with_key(body, path, character):
    """The body with `character` inside the key at `path` (the keys keep their order)."""
    body = copy.deepcopy(body)
    parent, key = value_at(body, path[:-1]), path[-1]
    items = list(parent.items())
    parent.clear()
    parent.update((_insert(k, character) if k == key else k, v) for k, v in items)
    return json.dumps(body).encode()


def with_token(body, path, token):
    """The body with the raw JSON text `token` (`1e3`, `true`, `9223372036854775808`) as the
    value at `path`."""
    body = copy.deepcopy(body)
    value_at(body, path[:-1])[path[-1]] = "@@token@@"
    return json.dumps(body).replace('"@@token@@"', token).encode()


def cut(text, fraction):
    """The first `fraction` of a body: truncated JSON."""
    return text[: max(1, int(len(text) * fraction))]


def nested(depth, opener="[", closer="]", inner=""):
    """`depth` levels of arrays (or of `opener` ... `closer`) around `inner`."""
    return opener * depth + inner + closer * depth


# --- sending --------------------------------------------------------------------------------


def ga_send(world, operation, raw, content_type="application/json"):
    """The operation's method and path with `raw` as its body (HTTP Basic, as the admin)."""
    method, path, _ = GA_OPERATIONS[operation]
    return world.ga.call(method, path(world), raw=raw, content_type=content_type)


def ga_get(world, path, query=""):
    """GET a path under /ga/api/v3/eng with this raw query string."""
    return world.ga.client.get(f"/ga/api/v3/eng{path}", QUERY_STRING=query)


def mm_sign(
    world,
    operation,
    body,
    *,
    target=None,
    content_type=signed.CONTENT_TYPE,
    region="us-east-1",
    service="ses",
    at=None,
    key_id=None,
    unsigned=(),
    query="",
):
    """(headers, body) of a call as botocore signs it: any raw body, target, content type,
    scope, date, key id or query string; the headers named in `unsigned` are added after
    signing."""
    headers = {
        "Content-Type": content_type,
        "X-Amz-Target": f"MailManagerSvc.{operation}" if target is None else target,
    }
    aws = AWSRequest(
        method="POST",
        url=f"http://{signed.HOST}/" + (f"?{query}" if query else ""),
        data=body,
        headers={k: v for k, v in headers.items() if k.lower() not in unsigned},
    )
    credentials = Credentials(key_id or world.key["AccessKeyId"], world.key["SecretAccessKey"])
    with mock.patch("botocore.auth.get_current_datetime", return_value=at or datetime.now(UTC)):
        SigV4Auth(credentials, service, region).add_auth(aws)
    signature = {name: aws.headers[name] for name in ("X-Amz-Date", "Authorization")}
    return {**headers, **signature}, body


def mm_send(headers, body, **extra):
    """POST / with exactly these headers; a 500 comes back as an answer."""
    meta = {
        "HTTP_" + name.upper().replace("-", "_"): value
        for name, value in headers.items()
        if name != "Content-Type"
    }
    return Client(raise_request_exception=False).generic(
        "POST",
        "/",
        body,
        content_type=headers.get("Content-Type", ""),
        HTTP_HOST=signed.HOST,
        REMOTE_ADDR="127.0.0.1",
        **meta,
        **extra,
    )


def mm_call(world, operation, body, **sign_options):
    """Sign `body` for the operation (see mm_sign's options) and send it."""
    return mm_send(*mm_sign(world, operation, body, **sign_options))


# --- every base body is valid ---------------------------------------------------------------


module_world, world = world_fixtures()


@pytest.mark.parametrize("operation", list(GA_OPERATIONS))
def test_every_greenarrow_base_body_is_accepted_as_it_is(world, operation):
    body = json.dumps(GA_OPERATIONS[operation][2](world)).encode()

    response = ga_send(world, operation, body)

    assert response.status_code == 200, response.content


@pytest.mark.parametrize("operation", list(MM_OPERATIONS))
def test_every_mail_manager_base_body_is_accepted_as_it_is(world, operation):
    response = mm_call(world, operation, json.dumps(mm_body(world, operation)).encode())

    assert response.status_code == 200, response.content
