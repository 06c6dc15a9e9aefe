"""Properties of the signed page tokens (relays/tokens.py) that every list of both APIs hands out.

A token made for a page state reads back as that state; any other string (altered, cut short,
made for another list or under another SECRET_KEY, or signed but not a page state) is refused
with `InvalidToken` and nothing else, and the APIs answer it with their own 400.
"""

from unittest import mock

import pytest
from django.core import signing
from django.test import override_settings
from hypothesis import assume, given
from hypothesis import strategies as st

from relays.tokens import InvalidToken, make_token, read_token
from tests.properties import MailManager, examples, rolled_back

REAL_LISTS = [
    "relay_servers",
    "ip_addresses",
    "routing_rules",
    "virtual_mtas",
    "used_by",
    "mailmanager.relays",
]
list_keys = st.one_of(st.sampled_from(REAL_LISTS), st.text(min_size=1, max_size=20))
positions = st.integers(min_value=-(2**63), max_value=2**63 - 1)  # ids and offsets
pages = st.integers(min_value=0, max_value=2**63 - 1)


@pytest.fixture(autouse=True)
def _fixed_clock():
    """Tokens carry the time they were signed at; fixed, every run draws the same examples."""
    with mock.patch.object(signing.TimestampSigner, "timestamp", lambda self: "1xVcVH"):
        yield


def refused(list_key, token):
    """True when `read_token` refuses `token` with InvalidToken (any other exception fails)."""
    try:
        read_token(list_key, token)
    except InvalidToken:
        return True
    return False


@examples(300)
@given(list_keys, positions, pages)
def test_a_token_reads_back_as_the_page_state_it_was_made_for(list_key, position, page):
    assert read_token(list_key, make_token(list_key, position, page)) == (position, page)


@st.composite
def altered(draw, token):
    """`token` changed in one of the ways a client or a proxy might change it."""
    how = draw(st.sampled_from(["replace", "delete", "insert", "truncate", "append", "swapcase"]))
    at = draw(st.integers(0, len(token) - 1))
    char = draw(
        st.one_of(
            st.sampled_from("ABCabc0129-_:.="),
            st.characters(codec="utf-8"),
            st.sampled_from(["\x00", "\ud800", "\n", " "]),
        )
    )
    if how == "replace":
        return token[:at] + char + token[at + 1 :]
    if how == "delete":
        return token[:at] + token[at + 1 :]
    if how == "insert":
        return token[:at] + char + token[at:]
    if how == "truncate":
        return token[:at]
    if how == "append":
        return token + draw(st.text(min_size=1, max_size=5))
    return token[:at] + token[at].swapcase() + token[at + 1 :]


@examples(400)
@given(st.data(), list_keys, positions, pages)
def test_an_altered_or_truncated_token_is_refused(data, list_key, position, page):
    token = make_token(list_key, position, page)
    changed = data.draw(altered(token))
    assume(changed != token)
    assert refused(list_key, changed), repr(changed)


@examples(200)
@given(list_keys, list_keys, positions, pages)
def test_a_token_of_another_list_is_refused(list_key, other, position, page):
    assume(other != list_key)
    assert refused(list_key, make_token(other, position, page))


@examples(100)
@given(list_keys, positions, pages, st.text(min_size=50, max_size=60))
def test_a_token_signed_under_another_secret_key_is_refused(list_key, position, page, secret):
    with override_settings(SECRET_KEY=secret):
        token = make_token(list_key, position, page)
    assume(secret != signing.settings.SECRET_KEY)
    assert refused(list_key, token)


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),  # NaN and Infinity too: Django's signing writes and reads them
        st.text(max_size=5),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
not_a_page_state = st.one_of(
    json_values,
    st.fixed_dictionaries({"after": json_values, "page": json_values}),
).filter(
    lambda value: (
        not (
            isinstance(value, dict)
            and type(value.get("after")) is int
            and type(value.get("page")) is int
        )
    )
)


@examples(300)
@given(st.sampled_from(REAL_LISTS), not_a_page_state)
def test_a_signed_value_that_is_not_a_page_state_is_refused(list_key, value):
    """A payload signed with this list's salt but not `{"after": int, "page": int}` (another
    release's format, say) is not a token of this list either."""
    assert refused(list_key, signing.dumps(value, salt=f"relays.page_token.{list_key}"))


@examples(300)
@given(
    st.one_of(
        st.text(),
        st.text(st.characters(categories=["Cs"])),
        st.none(),
        st.integers(),
        st.binary(),
        st.lists(st.text(max_size=3), max_size=2),
    )
)
def test_any_other_value_is_refused(value):
    assert refused("relay_servers", value)


def is_utf8(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@pytest.fixture
def mm(db):
    return MailManager()


@examples(20)
@given(st.data(), st.sampled_from(["relay_servers", "ip_addresses", "virtual_mtas"]))
def test_both_apis_answer_an_altered_token_with_their_own_400(admin, mm, data, list_key):
    token = make_token(list_key, data.draw(positions), data.draw(pages))
    changed = data.draw(altered(token))
    # Django's test client cannot put a lone surrogate in a query string (a real client would
    # send bytes that are not UTF-8, which Django decodes with replacement characters).
    assume(changed != token and is_utf8(changed))
    with rolled_back():
        response = admin.get(f"/{list_key}", page_token=changed)
        assert response.status_code == 400, response.content
        assert response.json()["error_code"] == "invalid_request"
        assert response.json()["error_messages"] in (
            ["page_token is not a valid page token for this list"],
            ["page_token must be text without NUL characters"],
        )

        token = make_token("mailmanager.relays", data.draw(positions), 0)
        changed = data.draw(altered(token))
        assume(changed != token)
        status, answer = mm("ListRelays", {"NextToken": changed})
        assert (status, answer["__type"]) == (400, "com.amazonaws.mailmanager#ValidationException")
