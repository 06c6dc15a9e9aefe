"""Properties of host names: a relay server's `source_ip.hostname` (HELO) and
`destination.hostname`, and an IP address's `hostname` (HELO).

The rules (README, "Rules beyond the vendor page" and "IP addresses"):
- relay server host names: 1-200 characters, only ASCII letters, digits, `.` and `-` (no `_`:
  Postfix takes none), starting and ending with a letter or digit;
- an IP address's HELO name: 1-200 characters, only ASCII letters, digits, `-` and `.`,
  starting and ending with a letter or digit, and not an IPv4 address.
A valid name is accepted and read back unchanged; a name that breaks exactly one rule is refused,
with the attribute named, and nothing is written.
"""

import string

import pytest
from django.core.exceptions import ValidationError
from hypothesis import assume, given
from hypothesis import strategies as st

from relays import validators as v
from tests.conftest import db_snapshot, relay_payload
from tests.factories import IpAddressFactory, RelayServerFactory
from tests.properties import MailManager, examples, mm_relay, rolled_back

ALNUM = string.ascii_letters + string.digits
RULES = {
    # attribute -> (validators, characters allowed inside)
    "relay": (v.HOSTNAME_VALIDATORS, ALNUM + ".-"),
    "helo": (v.HELO_VALIDATORS, ALNUM + ".-"),
}


def is_dotted_quad(text):
    """An IPv4 address in dotted-decimal notation (as `source_ip.ip` takes it): four decimal
    numbers 0-255 without leading zeros."""
    parts = text.split(".")
    return len(parts) == 4 and all(
        p != "" and all(c in string.digits for c in p) and int(p) <= 255 and str(int(p)) == p
        for p in parts
    )


def refusals(kind, text):
    """The validators of `kind` that refuse `text` (by function name)."""
    found = []
    for check in RULES[kind][0]:
        try:
            check(text)
        except ValidationError:
            found.append(check.__name__)
    return found


@st.composite
def hostnames(draw, kind, min_size=1, max_size=v.HOSTNAME_MAX):
    """A host name that keeps every rule of `kind`: mostly DNS-like labels, sometimes any mix
    of the allowed characters, lengths up to the limit included."""
    inside = RULES[kind][1]
    size = draw(
        st.one_of(st.integers(min_size, max(min_size, min(max_size, 30))), st.just(max_size))
    )
    if size == 1:
        return draw(st.sampled_from(ALNUM))
    middle = draw(st.text(st.sampled_from(inside), min_size=size - 2, max_size=size - 2))
    name = draw(st.sampled_from(ALNUM)) + middle + draw(st.sampled_from(ALNUM))
    if kind == "helo":
        assume(not is_dotted_quad(name))
    return name


dns_names = st.lists(
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True), min_size=1, max_size=5
).map(".".join)
BAD_CHARACTERS = [" ", "\x00", "\ud800", "\n", "\t", "\x7f", "@", "/", ":", "*", "+", ",", "é",
                  "\u0663", "\uff11", "\u202e", "\U0001f600", "[", "]"]  # fmt: skip


@st.composite
def one_violation(draw, kind):
    """(name, the one rule it breaks): a valid name changed in one way."""
    violation = draw(
        st.sampled_from(
            ["empty", "too_long", "character", "first", "last"]
            + (["ipv4"] if kind == "helo" else [])
            + ["underscore"]
        )
    )
    edge = ".-"
    if violation == "empty":
        return "", "hostname_length"
    if violation == "too_long":
        size = draw(st.integers(v.HOSTNAME_MAX + 1, v.HOSTNAME_MAX + 20))
        return draw(hostnames(kind, size, size)), "hostname_length"
    if violation == "ipv4":
        return str(draw(st.ip_addresses(v=4))), "not_ipv4"
    name = draw(
        st.one_of(hostnames(kind, 2, v.HOSTNAME_MAX - 1), dns_names.filter(lambda n: len(n) >= 2))
    )
    if violation == "first":
        return draw(st.sampled_from(edge)) + name, "hostname_alnum_ends"
    if violation == "last":
        return name + draw(st.sampled_from(edge)), "hostname_alnum_ends"
    bad = "_" if violation == "underscore" else draw(st.sampled_from(BAD_CHARACTERS))
    at = draw(st.integers(1, len(name) - 1))
    spoilt = name[:at] + bad + name[at:]
    assume(kind != "helo" or not is_dotted_quad(spoilt))
    return spoilt, ("helo_characters" if kind == "helo" else "hostname_characters")


valid_relay_names = st.one_of(hostnames("relay"), dns_names)
valid_helo_names = st.one_of(hostnames("helo"), dns_names.filter(lambda n: not is_dotted_quad(n)))


@examples(200)
@given(valid_relay_names, valid_helo_names)
def test_the_validators_accept_every_valid_host_name(relay_name, helo_name):
    assert refusals("relay", relay_name) == []
    assert refusals("helo", helo_name) == []


@examples(200)
@given(st.data(), st.sampled_from(list(RULES)))
def test_the_validators_refuse_each_single_violation_for_that_rule(data, kind):
    name, rule = data.draw(one_violation(kind))
    assert refusals(kind, name) == [rule], repr(name)


@pytest.fixture
def mm(db):
    return MailManager()


def mm_server_name(text):
    """Mail Manager's ServerName pattern (the botocore model's), checked before the shared rule."""
    return 1 <= len(text) <= 100 and all(c in ALNUM + ".-" for c in text)


@examples(25)
@given(source=valid_relay_names, destination=valid_relay_names, helo=valid_helo_names)
def test_valid_host_names_are_accepted_and_read_back_unchanged(
    admin, mm, source, destination, helo
):
    with rolled_back():
        body = relay_payload(
            source_ip={"ip": "127.0.0.2", "hostname": source},
            destination={"hostname": destination, "port": 25},
        )
        response = admin.post("/relay_servers", body)
        assert response.status_code == 200, response.json()
        relay = response.json()["data"]["relay_server"]
        got = admin.get(f"/relay_servers/{relay['id']}").json()["data"]["relay_server"]
        assert (got["source_ip"]["hostname"], got["destination"]["hostname"]) == (
            source,
            destination,
        )

        body = {"ip_address": {"name": "helo-ip", "ip": "10.0.0.1", "hostname": helo}}
        response = admin.post("/ip_addresses", body)
        assert response.status_code == 200, response.json()
        got = admin.get(f"/ip_addresses/{response.json()['data']['ip_address']['id']}")
        assert got.json()["data"]["ip_address"]["hostname"] == helo

        if mm_server_name(destination):
            status, answer = mm("CreateRelay", mm_relay(server=destination))
            assert status == 200, answer
            assert mm("GetRelay", answer)[1]["ServerName"] == destination


@examples(30)
@given(data=st.data(), attribute=st.sampled_from(["source_ip", "destination", "ip_address"]))
def test_a_host_name_breaking_one_rule_is_refused_at_its_attribute_and_writes_nothing(
    admin, mm, data, attribute
):
    kind = "helo" if attribute == "ip_address" else "relay"
    name, _ = data.draw(one_violation(kind))
    with rolled_back():
        relay = RelayServerFactory()
        ip = IpAddressFactory()
        before = db_snapshot()
        if attribute == "ip_address":
            path = "hostname"
            calls = [
                lambda: admin.post(
                    "/ip_addresses",
                    {"ip_address": {"name": "x", "ip": "10.0.0.1", "hostname": name}},
                ),
                lambda: admin.put(f"/ip_addresses/{ip.id}", {"ip_address": {"hostname": name}}),
            ]
        else:
            path = f"{attribute}.hostname"
            whole = {"source_ip": {"ip": "127.0.0.2"}, "destination": {"port": 25}}[attribute]
            body = relay_payload(**{attribute: {**whole, "hostname": name}})
            calls = [
                lambda: admin.post("/relay_servers", body),
                lambda: admin.put(
                    f"/relay_servers/{relay.id}", {"relay_server": {attribute: {"hostname": name}}}
                ),
            ]
        for call in calls:
            response = call()
            assert response.status_code == 400, response.json()
            assert response.json()["error_code"] == "validation_failed"
            assert any(m.startswith(f"{path} ") for m in response.json()["error_messages"])
        if attribute == "destination":
            for operation, params in (
                ("CreateRelay", mm_relay(server=name)),
                ("UpdateRelay", {"RelayId": relay.relay_id, "ServerName": name}),
            ):
                status, answer = mm(operation, params)
                assert (status, answer["__type"]) == (
                    400,
                    "com.amazonaws.mailmanager#ValidationException",
                )
        assert db_snapshot() == before
