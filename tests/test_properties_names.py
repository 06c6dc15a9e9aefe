"""Properties of VirtualMTA names, the rule shared by IP addresses, relay servers and routing rules.

The rule, as README ("Names") and relays/validators.py state it: ASCII 0x20-0x7e without `,`
`#` `@`, no leading or trailing whitespace, 1-200 characters, not an integer (`12`, `-3`, `+7`),
unique case-insensitively across every VirtualMTA type.
"""

import string

import pytest
from django.core.exceptions import ValidationError
from hypothesis import assume, given
from hypothesis import strategies as st

from relays import validators as v
from relays.models import RelayServer
from tests.conftest import db_snapshot
from tests.factories import IpAddressFactory, RelayServerFactory, RoutingRuleFactory
from tests.properties import GA_PATHS, KINDS, MailManager, examples, ga_body, mm_relay, rolled_back

# --- the rule, stated independently of relays/validators.py -------------------------------

DIGITS = "0123456789"  # ASCII only: U+0663 (ARABIC-INDIC THREE) is no digit of a name
NAME_ALPHABET = [chr(c) for c in range(0x20, 0x7F) if chr(c) not in ",#@"]


def is_whole_number(text):
    """An optional sign and one or more ASCII digits: what could be mistaken for an id."""
    body = text[1:] if text[:1] in ("+", "-") else text
    return body != "" and all(c in DIGITS for c in body)


def name_allowed(text):
    return (
        1 <= len(text) <= 200
        and all(0x20 <= ord(c) <= 0x7E and c not in ",#@" for c in text)
        and text[0] != " "
        and text[-1] != " "  # the only whitespace in ASCII 0x20-0x7e is the space
        and not is_whole_number(text)
    )


def validators_accept(text):
    try:
        for check in v.NAME_VALIDATORS:
            check(text)
    except ValidationError:
        return False
    return True


# Mail Manager's own RelayName pattern (the botocore model's), checked before the shared rule.
RELAY_NAME_CHARS = string.ascii_letters + DIGITS + "_-"


def mm_relay_name(text):
    return 1 <= len(text) <= 100 and all(c in RELAY_NAME_CHARS for c in text)


# --- strategies -----------------------------------------------------------------------------

# Characters that each break, or sit at the edge of, one part of the rule.
TRICKY = [
    "\x00",  # NUL: PostgreSQL cannot store it
    "\ud800",  # unpaired surrogates: not UTF-8
    "\udfff",
    "\u0663",  # ARABIC-INDIC DIGIT THREE: str.isdigit(), int() accepts it
    "\uff11",  # FULLWIDTH DIGIT ONE
    "\U0001d7d8",  # MATHEMATICAL DOUBLE-STRUCK DIGIT ZERO
    "\u00b2",  # SUPERSCRIPT TWO: isdigit() but not int()
    "\u212a",  # KELVIN SIGN: lower() is ASCII "k"
    "\t",
    "\n",
    "\x1f",
    "\x7f",
    "\u00a0",  # NO-BREAK SPACE: str.strip() removes it
    "\u2028",
    "\u202e",
    "\u00e9",
    "\U0001f600",
    ",",
    "#",
    "@",
    " ",
    "+",
    "-",
    "0",
    "7",
    "_",
]

ascii_names = st.text(st.sampled_from(NAME_ALPHABET), min_size=1, max_size=200)
long_ascii_names = st.text(st.sampled_from(NAME_ALPHABET), min_size=195, max_size=205)
whole_numbers = st.builds(
    lambda sign, zeros, n, pad: f"{pad}{sign}{'0' * zeros}{n}{pad}",
    st.sampled_from(["", "+", "-"]),
    st.integers(0, 3),
    st.integers(0, 10**30),
    st.sampled_from(["", "", " "]),
)
name_candidates = st.one_of(
    ascii_names,
    long_ascii_names,
    st.text(st.one_of(st.sampled_from(NAME_ALPHABET), st.sampled_from(TRICKY)), max_size=20),
    whole_numbers,
    st.text(max_size=12),  # any Unicode but surrogates
    st.text(st.characters(categories=["Cs"]), min_size=1, max_size=3),
)
valid_names = st.one_of(
    ascii_names,
    long_ascii_names,
    st.text(st.sampled_from(RELAY_NAME_CHARS), min_size=1, max_size=100),
).filter(name_allowed)
invalid_names = name_candidates.filter(lambda text: not name_allowed(text))


def case_variant(name, flips):
    """`name` with the case of some ASCII letters swapped."""
    return "".join(c.swapcase() if flip else c for c, flip in zip(name, flips, strict=False))


# --- the properties -------------------------------------------------------------------------


@examples(800)
@given(name_candidates)
def test_the_validators_accept_exactly_the_names_the_rule_allows(text):
    assert validators_accept(text) == name_allowed(text), repr(text)


@examples(200)
@given(whole_numbers)
def test_a_whole_number_is_never_a_name(text):
    assert not validators_accept(text)
    assert not validators_accept(text.strip())


FACTORIES = {
    "relay_server": RelayServerFactory,
    "ip_address": IpAddressFactory,
    "routing_rule": RoutingRuleFactory,
}
TARGET = "property-target"  # what a routing rule created by a test delivers through


@pytest.fixture
def mm(db):
    return MailManager()


@examples(25)
@given(
    name=valid_names,
    kind=st.sampled_from(KINDS),
    via_mail_manager=st.booleans(),
    flips=st.lists(st.booleans(), min_size=200, max_size=200),
)
def test_an_allowed_name_is_stored_as_given_and_blocks_every_case_variant_in_every_type(
    admin, mm, name, kind, via_mail_manager, flips
):
    """Created through either API, the name reads back unchanged through both; afterwards any
    case variant of it is refused for every type by both APIs (create and rename), and the
    refusal writes nothing; only the holder may take the variant."""
    assume(name.lower() != TARGET)
    via_mail_manager = via_mail_manager and kind == "relay_server" and mm_relay_name(name)
    with rolled_back():
        target = IpAddressFactory(name=TARGET)
        if via_mail_manager:
            status, answer = mm("CreateRelay", mm_relay(name))
            assert status == 200, answer
            status, got = mm("GetRelay", {"RelayId": answer["RelayId"]})
            assert got["RelayName"] == name
            record_id = RelayServer.objects.get(relay_id=answer["RelayId"]).id
        else:
            response = admin.post(GA_PATHS[kind], ga_body(kind, name, target.id))
            assert response.status_code == 200, response.json()
            record_id = response.json()["data"][kind]["id"]
        assert admin.get(f"{GA_PATHS[kind]}/{record_id}").json()["data"][kind]["name"] == name
        if kind == "relay_server":
            relay_id = RelayServer.objects.get(id=record_id).relay_id
            assert mm("GetRelay", {"RelayId": relay_id})[1]["RelayName"] == name

        variant = case_variant(name, flips)
        taken = f"name {variant!r} is already used by {kind} {record_id} ({name})"
        before = db_snapshot()
        for other in KINDS:
            response = admin.post(GA_PATHS[other], ga_body(other, variant, target.id))
            assert response.status_code == 400
            assert response.json()["error_code"] == "validation_failed"
            assert response.json()["error_messages"] == [taken]
        renamed = admin.put(f"/ip_addresses/{target.id}", {"ip_address": {"name": variant}})
        assert renamed.json()["error_messages"] == [taken]
        status, answer = mm("CreateRelay", mm_relay(variant))
        if mm_relay_name(variant):
            assert (status, answer["__type"]) == (
                409,
                "com.amazonaws.mailmanager#ConflictException",
            )
            # The same problem in Mail Manager's words: its member, not the GreenArrow path.
            assert (
                f"RelayName {variant!r} is already used by {kind} {record_id} ({name})"
                in (answer["Message"])
            )
        else:
            assert (status, answer["__type"]) == (
                400,
                "com.amazonaws.mailmanager#ValidationException",
            )
        assert db_snapshot() == before

        # The holder itself may change the case of its own name.
        response = admin.put(f"{GA_PATHS[kind]}/{record_id}", {kind: {"name": variant}})
        assert response.json()["data"][kind]["name"] == variant


@examples(25)
@given(name=st.one_of(invalid_names, whole_numbers.filter(lambda t: not name_allowed(t))))
def test_a_refused_name_is_refused_by_both_apis_for_every_type_and_writes_nothing(admin, mm, name):
    with rolled_back():
        target = IpAddressFactory(name=TARGET)
        existing = {kind: FACTORIES[kind]() for kind in KINDS}
        before = db_snapshot()
        for kind in KINDS:
            for response in (
                admin.post(GA_PATHS[kind], ga_body(kind, name, target.id)),
                admin.put(f"{GA_PATHS[kind]}/{existing[kind].id}", {kind: {"name": name}}),
            ):
                assert response.status_code == 400, response.json()
                assert response.json()["error_code"] == "validation_failed"
                assert all(m.startswith("name ") for m in response.json()["error_messages"])
        relay_id = existing["relay_server"].relay_id
        for operation, params in (
            ("CreateRelay", mm_relay(name)),
            ("UpdateRelay", {"RelayId": relay_id, "RelayName": name}),
        ):
            status, answer = mm(operation, params)
            assert (status, answer["__type"]) == (
                400,
                "com.amazonaws.mailmanager#ValidationException",
            )
            assert "RelayName" in answer["Message"] or answer["Message"].startswith("name ")
        assert db_snapshot() == before
