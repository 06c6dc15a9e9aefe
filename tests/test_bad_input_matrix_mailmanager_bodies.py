"""The bad-input matrix, Mail Manager request bodies (see test_bad_input_matrix.py): NUL and
lone surrogates in every member name and string, numbers that are no valid integer, bodies
that are no JSON (content types, truncation, bytes that are not UTF-8, NaN, duplicate keys,
deep nesting) and 10 MB bodies, each signed correctly and answered with the Smithy error its
status, and no table changed."""

import json

from tests.test_bad_input_matrix import (
    BAD_CHARACTERS,
    NOT_INTEGERS,
    NOT_JSON_BODIES,
    NOT_UTF8,
    TEN_MB,
    TRUNCATIONS,
    row,
    rows_test,
    world_fixtures,
)
from tests.test_bad_input_matrix_requests import (
    MM_OPERATIONS,
    SHAPE,
    cut,
    dotted,
    mm_body,
    mm_call,
    nested,
    positions,
    with_key,
    with_string,
    with_token,
)


def mm(operation, wrong, status, code, change, **options):
    """A row whose call is the operation's valid body, changed (change(body) -> bytes), then
    signed; `sign` options go to the signer."""
    sign = options.pop("sign", {})
    send = lambda w: mm_call(w, operation, change(mm_body(w, operation)), **sign)  # noqa: E731
    return row("Mail Manager", operation, wrong, status, code, send, **options)


def position_rows():
    """Every member name and string of every operation's body (walked, never listed) with NUL
    and with a lone surrogate; every integer as each of NOT_INTEGERS."""
    for operation, body in MM_OPERATIONS.items():
        for kind, path in positions(body(SHAPE)):
            if kind == "integer":
                for label, token in NOT_INTEGERS.items():
                    yield mm(
                        operation,
                        f"{label} as {dotted(path)}",
                        400,
                        "ValidationException",
                        lambda b, p=path, t=token: with_token(b, p, t),
                    )
                continue
            for label, character in BAD_CHARACTERS.items():
                if kind == "key":
                    wrong, change = f"{label} in the member name {dotted(path)}", with_key
                else:
                    wrong, change = f"{label} in {dotted(path)}", with_string
                yield mm(
                    operation,
                    wrong,
                    400,
                    "ValidationException",
                    lambda b, f=change, p=path, c=character: f(b, p, c),
                )
    for size in ("-1", "0", "51"):
        yield mm(
            "ListRelays",
            f"PageSize {size}",
            400,
            "ValidationException",
            lambda b, s=size: with_token(b, ("PageSize",), s),
        )


def dump(body):
    return json.dumps(body).encode()


def malformed_rows():
    for operation, name in (("CreateRelay", b"mm-relay"), ("UpdateRelay", b"relay-1b")):

        def serialization(wrong, change, op=operation, **sign):
            return mm(op, wrong, 400, "SerializationException", change, sign=sign)

        # Signed correctly over a body that is no JSON, whatever its content type says.
        for content_type, raw in NOT_JSON_BODIES.items():
            yield serialization(
                f"a {content_type.split(';')[0]} body",
                lambda b, r=raw: r,
                content_type=content_type,
            )
        yield serialization(
            "JSON in utf-16, as the content type says",
            lambda b: json.dumps(b).encode("utf-16"),
            content_type="application/x-amz-json-1.0; charset=utf-16",
        )
        for fraction in TRUNCATIONS:
            yield serialization(
                f"JSON cut at {fraction:.0%}", lambda b, f=fraction: cut(dump(b), f)
            )
        for wrong, data in NOT_UTF8.items():
            yield serialization(
                f"not UTF-8: {wrong}", lambda b, d=data, n=name: dump(b).replace(n, n + d, 1)
            )
        for wrong, change in [
            ("10,000 nested arrays", lambda b: nested(10_000).encode()),
            ("10,000 nested objects", lambda b: nested(10_000, '{"a":', "}", "1").encode()),
            (
                "a member nested 10,000 deep",
                lambda b, n=name: dump(b).replace(b'"' + n + b'"', nested(10_000).encode()),
            ),
        ]:
            yield serialization(wrong, change)
        yield mm(
            operation,
            "a member nested 500 deep",
            400,
            "ValidationException",
            lambda b, n=name: dump(b).replace(b'"' + n + b'"', nested(500).encode()),
        )
        # ValidationException has the Smithy status 400 (DESIGN.md, Mail Manager API).
        yield mm(
            operation,
            "a 10 MB body",
            400,
            "ValidationException",
            lambda b: dump(b)[:-1] + b" " * TEN_MB + b"}",
        )
    for wrong, change in [
        ("NaN as ServerPort", lambda b: dump(b).replace(b"587", b"NaN")),
        ("Infinity as ServerPort", lambda b: dump(b).replace(b"587", b"Infinity")),
        ("-Infinity in another member", lambda b: dump(b)[:-1] + b', "Extra": -Infinity}'),
    ]:
        yield mm(
            "CreateRelay",
            f"not JSON: {wrong}",
            400,
            "SerializationException",
            change,
        )
    for operation, wrong, member in [
        ("CreateRelay", "RelayName twice", b'"RelayName": '),
        ("GetRelay", "RelayId twice", b'"RelayId": '),
    ]:
        yield mm(
            operation,
            f"duplicate keys: {wrong}",
            400,
            "SerializationException",
            lambda b, m=member: dump(b).replace(m, m + b'"first", ' + m, 1),
        )


ROWS = [*position_rows(), *malformed_rows()]


module_world, world = world_fixtures()
test_bad_input_gets_its_documented_4xx_and_changes_nothing = rows_test(ROWS)


def test_a_create_nested_as_deep_as_the_parser_allows_is_never_a_5xx(world):
    """The deepest nesting the endpoint parses (found with GetRelay, which writes nothing),
    and just below it, in an otherwise valid CreateRelay: accepted or refused, never a 5xx."""

    def send(operation, depth, **members):
        raw = dump({**members, "Extra": "@@deep@@"}).replace(b'"@@deep@@"', nested(depth).encode())
        return mm_call(world, operation, raw)

    parsed, refused = 1, 10_000
    while refused - parsed > 1:
        middle = (parsed + refused) // 2
        if send("GetRelay", middle, RelayId="rl-missing").status_code == 404:
            parsed = middle
        else:
            refused = middle
    for depth in range(parsed, parsed - 8, -1):
        body = {**mm_body(world, "CreateRelay"), "RelayName": f"deep-{depth}"}
        del body["ClientToken"]
        response = send("CreateRelay", depth, **body)
        assert response.status_code < 500, (depth, response.content)
