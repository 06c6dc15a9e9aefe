"""The bad-input matrix, GreenArrow request bodies (see test_bad_input_matrix.py): NUL and
lone surrogates in every key and string, numbers that are no valid integer, bodies that are
no JSON (content types, truncation, bytes that are not UTF-8, duplicate keys, deep nesting)
and 10 MB bodies, each answered with the envelope's documented status and error_code, and no
table changed."""

import json

from tests.test_bad_input_matrix import (
    BAD_CHARACTERS,
    NOT_INTEGERS,
    NOT_JSON_BODIES,
    NOT_UTF8,
    TEN_MB,
    TRUNCATIONS,
    UNSTORABLE,
    row,
    rows_test,
    world_fixtures,
)
from tests.test_bad_input_matrix_requests import (
    GA_OPERATIONS,
    SHAPE,
    cut,
    dotted,
    ga_send,
    nested,
    positions,
    with_key,
    with_string,
    with_token,
)

NOT_JSON = ["the request body is not valid UTF-8 JSON"]
TOO_LARGE = ["the request body is larger than 1 MiB"]
REFERENCES = {"redirect", "virtual_mta"}
NUMBERS = {"portion_of_mail"}  # any number > 0: floats are valid values, not wrong ones


def ga(operation, wrong, status, code, change, content_type="application/json", **options):
    """A row whose request is the operation's valid body, changed: change(body) -> bytes."""
    body = GA_OPERATIONS[operation][2]
    send = lambda w: ga_send(w, operation, change(body(w)), content_type)  # noqa: E731
    return row("GreenArrow", operation, wrong, status, code, send, **options)


def field_of(path):
    """The attribute a message names for a position (a reference hash for its members),
    without the root key unless it is the attribute itself."""
    if len(path) > 1 and path[-2] in REFERENCES:
        path = path[:-1]
    return dotted(path[1:]) if len(path) > 1 else path[0]


def key_row(operation, path, label, character):
    mangled = dotted((*path[:-1], path[-1][:1] + character + path[-1][1:]))
    if len(path) == 1:
        expected = [f"the request body must have the key {path[0]}"]
    elif character == "\x00":
        expected = [f"unknown attribute {mangled}"]
    else:  # echoed escaped: a lone surrogate cannot be UTF-8
        expected = "unknown attribute "
    return ga(
        operation,
        f"{label} in the key {dotted(path)}",
        400,
        "invalid_request",
        lambda b: with_key(b, path, character),
        messages=expected,
    )


def string_row(operation, path, label, character):
    field = field_of(path)
    if len(path) > 1 and path[-2] in REFERENCES:  # a member of a reference hash
        expected = [f"{field} {path[-1]} {UNSTORABLE}"]
    else:
        expected = [f"{field} {UNSTORABLE}"]
    return ga(
        operation,
        f"{label} in {dotted(path)}",
        400,
        "validation_failed",
        lambda b: with_string(b, path, character),
        messages=expected,
    )


def position_rows():
    """Every key and string of every body (walked, never listed) with NUL and with a lone
    surrogate; every integer as each of NOT_INTEGERS."""
    for operation, (_, _, body) in GA_OPERATIONS.items():
        shape = body(SHAPE)
        for kind, path in positions(shape):
            if kind == "integer":
                for label, token in NOT_INTEGERS.items():
                    if path[-1] in NUMBERS and label in {"1.0", "1.5", "1e3"}:
                        continue
                    yield ga(
                        operation,
                        f"{label} as {dotted(path)}",
                        400,
                        "validation_failed",
                        lambda b, p=path, t=token: with_token(b, p, t),
                        messages=f"{field_of(path)} ",
                    )
                continue
            for label, character in BAD_CHARACTERS.items():
                if kind == "key":
                    yield key_row(operation, path, label, character)
                else:
                    yield string_row(operation, path, label, character)


def dump(body):
    return json.dumps(body).encode()


def deep(body, depth):
    """The body with its first reference name (or name) replaced by `depth` nested arrays."""
    text = dump(body)
    for name in (b'"ip-1"', b'"relay-1"', b'"relay-new"'):
        if name in text:
            return text.replace(name, nested(depth).encode(), 1)
    raise AssertionError("no name to nest in")


def malformed_rows():
    operations = ("POST /relay_servers", "PUT /relay_servers/{id}", "PUT /virtual_mtas/default")
    for operation in operations:
        # The body is read as UTF-8 JSON whatever the Content-Type (README, Bodies): a form,
        # a multipart body, XML or another charset is simply not JSON.
        for content_type, raw in NOT_JSON_BODIES.items():
            yield ga(
                operation,
                f"a {content_type.split(';')[0]} body",
                400,
                "invalid_request",
                lambda b, r=raw: r,
                content_type=content_type,
                messages=NOT_JSON,
            )
        for charset, encode in (
            ("utf-16", lambda b: dump(b).decode().encode("utf-16")),
            ("iso-8859-1", lambda b: dump(b).replace(b"-1", b"-\xe91")),
        ):
            yield ga(
                operation,
                f"JSON in {charset}, as the content type says",
                400,
                "invalid_request",
                encode,
                content_type=f"application/json; charset={charset}",
                messages=NOT_JSON,
            )
        for fraction in TRUNCATIONS:
            yield ga(
                operation,
                f"JSON cut at {fraction:.0%}",
                400,
                "invalid_request",
                lambda b, f=fraction: cut(dump(b), f),
                messages=NOT_JSON,
            )
        for wrong, data in NOT_UTF8.items():
            yield ga(
                operation,
                f"not UTF-8: {wrong}",
                400,
                "invalid_request",
                lambda b, d=data: dump(b).replace(b'-1"', b"-1" + d + b'"', 1),
                messages=NOT_JSON,
            )
        for wrong, change in [
            ("10,000 nested arrays", lambda b: nested(10_000).encode()),
            ("10,000 nested objects", lambda b: nested(10_000, '{"a":', "}", "1").encode()),
            ("a value nested 10,000 deep", lambda b: deep(b, 10_000)),
        ]:
            yield ga(operation, wrong, 400, "invalid_request", change, messages=NOT_JSON)
    for operation in GA_OPERATIONS:
        yield ga(
            operation,
            "a 10 MB body",
            413,
            "invalid_request",
            lambda b: dump(b)[:-1] + b" " * TEN_MB + b"}",
            messages=TOO_LARGE,
        )
    # Duplicate keys leave a body's meaning open (RFC 8259, 4): not a valid request.
    for operation, wrong, old, new in [
        (
            "POST /relay_servers",
            "name twice",
            b'"name": "relay-new"',
            b'"name": "x", "name": "relay-new"',
        ),
        ("PUT /relay_servers/{id}", "port twice", b'"port": 587', b'"port": 1, "port": 587'),
        ("PUT /virtual_mtas/default", "id twice", b'"id": ', b'"id": 1, "id": '),
    ]:
        yield ga(
            operation,
            f"duplicate keys: {wrong}",
            400,
            "invalid_request",
            lambda b, o=old, n=new: dump(b).replace(o, n, 1),
        )
    yield ga(
        "POST /relay_servers",
        "duplicate keys: the root key twice",
        400,
        "invalid_request",
        lambda b: b"{" + dump(b)[1:-1] + b", " + dump(b)[1:],
    )


ROWS = [*position_rows(), *malformed_rows()]


module_world, world = world_fixtures()
test_bad_input_gets_its_documented_4xx_and_changes_nothing = rows_test(ROWS)


def test_a_value_nested_as_deep_as_the_parser_allows_is_refused_like_any_wrong_value(world):
    """At the deepest nesting the parser reads, and just below it, a value is still only a
    wrong value: nothing after the parser recurses over it."""
    operation = "POST /relay_servers"

    def post(depth):
        return ga_send(world, operation, deep(GA_OPERATIONS[operation][2](world), depth))

    parsed, refused = 1, 10_000
    while refused - parsed > 1:
        middle = (parsed + refused) // 2
        if post(middle).json()["error_messages"] == NOT_JSON:
            refused = middle
        else:
            parsed = middle
    for depth in range(parsed, parsed - 8, -1):
        response = post(depth)
        assert response.status_code == 400, (depth, response.content)
        assert response.json()["error_messages"] == ["redirect name must be a string"]
