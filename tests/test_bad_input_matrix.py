"""The bad-input matrix (issue 11, item 5): however a request to either API is malformed, it
gets its documented 4xx in that API's own error shape (never a 5xx, never an HTML page), and
every table of the database is exactly as it was.

Each row is (API, operation, what is wrong, expected status, expected error_code or __type),
with the request that shows it. A row that fails today because of a product bug is marked
xfail (strict) with the symptom and the code at fault, and keeps the correct expectation.
- test_bad_input_matrix.py (this module): what every row shares: `Row`, the records rows act
  on (`World`), the whole-database dump and the checks of an answer.
- test_bad_input_matrix_requests.py: one valid body per operation, the walk over a body's
  positions, the senders; its tests show every base body is accepted as it is.
- test_bad_input_matrix_greenarrow_bodies.py, ..._greenarrow_queries.py: GreenArrow rows.
- test_bad_input_matrix_mailmanager_bodies.py, ..._mailmanager_calls.py: Mail Manager rows.

The dump is every row of every table (Django's, the audit log and the login failures
included), with one exception and one allowance:
- `relays_accesskey.last_used_at` is masked: an accepted signature is the key's "last use"
  even when the operation then refuses the call (README, "Using boto3": one UPDATE per key per
  minute), and every Mail Manager row that gets past the signature is such a use.
- `relays_loginfailure` gains exactly one Mail Manager row when the row says the refusal is a
  counted login failure (a wrong signature, an unknown key: README, "Brute force"); for every
  other row it must not change at all (a stale date or another region is documented as not
  counted).
"""

import json
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import pytest
from django.db import connection, transaction

from relays.models import LoginFailure, RelayServer, RelayTag
from tests import signed
from tests.conftest import GreenArrowClient
from tests.factories import (
    IpAddressFactory,
    RelayServerFactory,
    RoutingRuleFactory,
    UserFactory,
    add_override,
)

ON_POSTGRESQL = connection.vendor == "postgresql"
UNSTORABLE = "must be text without NUL characters or unpaired surrogates"
# Written into a body as JSON escapes (json.dumps escapes both), as a client would send them.
BAD_CHARACTERS = {"NUL": "\x00", "lone surrogate": "\ud800"}
TEN_MB = 10 * 1024 * 1024
# Raw JSON where an integer belongs: past the 64-bit range both ways, floats, booleans.
NOT_INTEGERS = {
    "2^63": "9223372036854775808",
    "-2^63-1": "-9223372036854775809",
    "1.0": "1.0",
    "1.5": "1.5",
    "1e3": "1e3",
    "true": "true",
    "false": "false",
}
# Bytes that are not UTF-8, written inside a string of a valid body.
NOT_UTF8 = {
    "a lone 0xff byte": b"\xff",
    "an overlong encoding": b"\xc0\xaf",
    "a surrogate encoded as UTF-8": b"\xed\xa0\x80",
    "a cut multibyte sequence": b"\xe2\x82",
    "a code point past U+10FFFF": b"\xf4\x90\x80\x80",
    "a lone continuation byte": b"\x80",
}
# Bodies that are no JSON, by the content type they come with.
NOT_JSON_BODIES = {
    "application/x-www-form-urlencoded": b"name=x&port=25",
    "multipart/form-data; boundary=x": (
        b'--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--x--\r\n'
    ),
    "application/xml": b"<relay><name>x</name></relay>",
}
TRUNCATIONS = (0.1, 0.5, 0.9, 0.99)
OTHER_SECRET_KEY = "another-deployment-secret-key-" + "y1-" * 10


class Row(NamedTuple):
    api: str  # "GreenArrow" or "Mail Manager"
    operation: str  # "POST /relay_servers", "CreateRelay"
    wrong: str  # what is wrong with the request, in words
    status: int
    code: str | None  # error_code or __type name; None: a documented success
    send: Any  # send(world) -> the response
    messages: Any = None  # GreenArrow: the exact error_messages (list) or the one's start (str)
    counted: bool = False  # the refusal is a counted login failure
    prepare: Any = None  # prepare(world), before the database is dumped


def row(*fields, xfail=None, xfail_if=True, **options):
    """A Row as a pytest parameter named "operation | what is wrong"; `xfail` names the product
    bug that makes it fail today (strict: the row must pass once the bug is fixed)."""
    entry = Row(*fields, **options)
    marks = [pytest.mark.xfail(xfail_if, reason=xfail, strict=True)] if xfail else []
    return pytest.param(entry, id=f"{entry.operation} | {entry.wrong}", marks=marks)


@dataclass
class World:
    """What the rows act on: an admin (Basic and an access key), an IP address, a relay that a
    routing rule delivers through (with a tag), a relay nothing refers to, and the rule with
    one domain override."""

    ga: Any
    key: dict
    ip: Any
    relay: Any
    spare: Any
    rule: Any
    override: Any
    extra: dict = field(default_factory=dict)
    baseline: Any = None  # the dump of the database as built: where every row starts


def build_world():
    UserFactory(username="admin", is_superuser=True)
    ga = GreenArrowClient("admin")
    ga.client.raise_request_exception = False  # a 500 is an answer to check, not a crash
    ip = IpAddressFactory(name="ip-1", ip="10.0.0.1", hostname="helo-1.example.com")
    relay = RelayServerFactory(name="relay-1")
    spare = RelayServerFactory(name="relay-2")
    rule = RoutingRuleFactory(name="rule-1", targets=[(relay, 1)])
    override = add_override(rule, ["example.com"], [(ip, 1)])
    RelayTag.objects.create(relay=relay, key="team", value="mail")
    return World(ga, signed.new_key("admin"), ip, relay, spare, rule, override)


MASKED = {"relays_accesskey": "last_used_at"}


def _all_rows(cursor, tables):
    """{table: [row as a dict]}; on PostgreSQL in one statement (one round trip, not one per
    table), its values as json_agg writes them."""
    quote = connection.ops.quote_name
    if connection.vendor == "postgresql":
        cursor.execute(
            "SELECT "
            + ", ".join(f"(SELECT coalesce(json_agg(r), '[]') FROM {quote(t)} r)" for t in tables)
        )
        return dict(zip(tables, cursor.fetchone(), strict=True))
    found = {}
    for table in tables:
        cursor.execute(f"SELECT * FROM {quote(table)}")
        columns = [column[0] for column in cursor.description]
        found[table] = [dict(zip(columns, values, strict=True)) for values in cursor.fetchall()]
    return found


def dump_database():
    """{table: its rows, each as the repr of its (column, value) pairs, sorted} of every table
    in the database, the `MASKED` columns masked."""
    with connection.cursor() as cursor:
        tables = sorted(connection.introspection.table_names(cursor))
        found = _all_rows(cursor, tables)
    for table, column in MASKED.items():
        for values in found[table]:
            values[column] = "(masked)"
    return {
        table: sorted(repr(tuple(values.items())) for values in rows)
        for table, rows in found.items()
    }


def assert_unchanged(before, after, counted=False):
    before, after = dict(before), dict(after)
    failures = LoginFailure._meta.db_table
    if counted:
        rows, earlier = after.pop(failures), before.pop(failures)
        assert len(rows) == len(earlier) + 1 and set(earlier) <= set(rows), "one failure counted"
        assert LoginFailure.objects.latest("id").door == LoginFailure.Door.MAILMANAGER
    changed = {
        table: {"before": before.get(table), "after": after.get(table)}
        for table in before.keys() | after.keys()
        if before.get(table) != after.get(table)
    }
    assert not changed, f"the refused request changed the database: {changed}"


def check_greenarrow(response, entry):
    assert response.status_code == entry.status, response.content[:600]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = json.loads(response.content)
    assert set(body) == {"success", "data", "error_code", "error_messages"}
    if entry.code is None:
        assert body["success"] is True and body["error_code"] is None
        return
    assert (body["success"], body["data"], body["error_code"]) == (False, None, entry.code)
    messages = body["error_messages"]
    assert messages and all(isinstance(m, str) for m in messages)
    if isinstance(entry.messages, list):
        assert messages == entry.messages
    elif isinstance(entry.messages, str):
        assert len(messages) == 1 and messages[0].startswith(entry.messages), messages


def check_mailmanager(response, entry):
    assert response.status_code == entry.status, response.content[:600]
    assert response["Content-Type"] == signed.CONTENT_TYPE
    body = json.loads(response.content)
    if entry.code is None:
        assert "__type" not in body
        return
    assert body["__type"] == f"com.amazonaws.mailmanager#{entry.code}"
    assert isinstance(body["Message"], str) and body["Message"]
    assert response["X-Amzn-Errortype"] == entry.code


def run_row(world, entry):
    """Send the row's request; check its answer, then that no table changed: every row starts
    from the world's baseline (its own transaction is rolled back), a prepared one from a dump
    taken after `prepare`."""
    if entry.prepare:
        entry.prepare(world)
    before = dump_database() if entry.prepare or world.baseline is None else world.baseline
    response = entry.send(world)
    html = b"<html" in response.content[:2000].lower()
    assert not html, f"an HTML page, HTTP {response.status_code}"
    (check_greenarrow if entry.api == "GreenArrow" else check_mailmanager)(response, entry)
    assert_unchanged(before, dump_database(), entry.counted)


def shared_world(django_db_blocker):
    """One World per module, inside a transaction rolled back when the module ends: each
    test's own transaction (pytest-django's) is a savepoint inside it, so every row starts
    from the same records without paying for them (as Django's setUpTestData). Rows must not
    change the instances themselves (`prepare` deletes through a queryset)."""
    with django_db_blocker.unblock(), transaction.atomic():
        world = build_world()
        world.baseline = dump_database()
        yield world
        transaction.set_rollback(True)


def world_fixtures():
    """`module_world, world` for a module of the matrix (assign both at its top level): the
    module's World made once, and each test's copy of it with nothing left over from an
    earlier row."""

    @pytest.fixture(scope="module")
    def module_world(django_db_setup, django_db_blocker):
        yield from shared_world(django_db_blocker)

    @pytest.fixture
    def world(module_world, db):
        return replace(module_world, extra={})

    return module_world, world


def rows_test(rows):
    """The test of a module's rows (assign it at the module's top level as
    `test_bad_input_gets_its_documented_4xx_and_changes_nothing`)."""

    @pytest.mark.parametrize("entry", rows)
    def test_bad_input_gets_its_documented_4xx_and_changes_nothing(world, entry):
        run_row(world, entry)

    return test_bad_input_gets_its_documented_4xx_and_changes_nothing


module_world, world = world_fixtures()


# --- the matrix's own checks ----------------------------------------------------------------


def test_the_dump_sees_a_change_in_any_table(world):
    before = dump_database()
    RelayServer.objects.filter(pk=world.spare.pk).update(destination_port=26)

    with pytest.raises(AssertionError, match="relays_relayserver"):
        assert_unchanged(before, dump_database())


def test_the_dump_covers_every_table_of_every_app(db):
    from django.apps import apps

    tables = dump_database()

    assert {m._meta.db_table for m in apps.get_models(include_auto_created=True)} <= set(tables)


def test_a_login_failure_is_allowed_only_where_a_row_says_it_is_counted(world):
    from relays import lockout

    before = dump_database()
    lockout.record_failure("AKIAEXAMPLE", "127.0.0.1", LoginFailure.Door.MAILMANAGER)
    after = dump_database()

    assert_unchanged(before, after, counted=True)
    with pytest.raises(AssertionError, match="relays_loginfailure"):
        assert_unchanged(before, after)
