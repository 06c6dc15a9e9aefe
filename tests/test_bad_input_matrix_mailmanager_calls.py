"""The bad-input matrix, Mail Manager calls (see test_bad_input_matrix.py): unknown and
unsigned X-Amz-Target, headers changed after signing, SigV4 dates stale and in the future,
another region or service in the credential scope, NUL in the access key id, NextTokens that
are foreign, stale or truncated, and a query string; each answered with the Smithy error and
its status, and no table changed but for the one login failure a bad signature counts."""

import json
from datetime import UTC, datetime, timedelta

from django.test import override_settings

from relays.models import RelayServer
from relays.tokens import make_token
from tests.test_bad_input_matrix import OTHER_SECRET_KEY, row, rows_test, world_fixtures
from tests.test_bad_input_matrix_requests import mm_body, mm_call, mm_send, mm_sign

LIST_KEY = "mailmanager.relays"


def mm(operation, wrong, status, code, send, **options):
    return row("Mail Manager", operation, wrong, status, code, send, **options)


def dump(body):
    return json.dumps(body).encode()


def now():
    return datetime.now(UTC)


def signed_as(operation, **sign):
    """send(world): the operation's valid body, signed with these signer options."""
    return lambda w: mm_call(w, operation, dump(mm_body(w, operation)), **sign)


def then_changed(operation, header, value, signed_for=None):
    """send(world): the valid body signed (as `signed_for`, else as itself), then `header`
    sent as value() instead of what was signed."""

    def send(world):
        raw = dump(mm_body(world, operation))
        headers, body = mm_sign(world, signed_for or operation, raw)
        return mm_send({**headers, header: value()}, body)

    return send


def signature_rows():
    for operation in ("CreateRelay", "DeleteRelay"):
        for target in [
            "MailManagerSvc.Nope",
            "MailManagerSvc.",
            f"MailManagerSvc.{operation.lower()}",
            f"mailmanagersvc.{operation}",
            f"OtherSvc.{operation}",
            f" MailManagerSvc.{operation}",
            f"MailManagerSvc.{operation}\x00",
            f"MailManagerSvc.{operation}.Extra",
            "",
        ]:
            yield mm(
                operation,
                f"X-Amz-Target {target!r}",
                400,
                "UnknownOperationException",
                signed_as(operation, target=target),
            )
        for header in ("x-amz-target", "content-type"):
            yield mm(
                operation,
                f"{header} not signed",
                403,
                "IncompleteSignatureException",
                signed_as(operation, unsigned=(header,)),
            )
        # The headers say another operation, or another content type, than was signed: the
        # signature does not match, a counted failure.
        yield mm(
            operation,
            "X-Amz-Target changed after signing (signed as GetRelay)",
            403,
            "InvalidSignatureException",
            then_changed(
                operation, "X-Amz-Target", lambda o=operation: f"MailManagerSvc.{o}", "GetRelay"
            ),
            counted=True,
        )
        yield mm(
            operation,
            "Content-Type changed after signing",
            403,
            "InvalidSignatureException",
            then_changed(operation, "Content-Type", lambda: "application/json"),
            counted=True,
        )
        for wrong, at in [
            ("16 minutes ago", lambda: now() - timedelta(minutes=16)),
            ("16 minutes ahead", lambda: now() + timedelta(minutes=16)),
            ("a day ago", lambda: now() - timedelta(days=1)),
            ("a year ahead", lambda: now() + timedelta(days=365)),
            ("in 1970", lambda: datetime(1970, 1, 1, tzinfo=UTC)),
            ("in 9999", lambda: datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)),
        ]:
            yield mm(
                operation,
                f"signed {wrong}",
                403,
                "InvalidSignatureException",
                lambda w, o=operation, a=at: mm_call(w, o, dump(mm_body(w, o)), at=a()),
            )
        yield mm(
            operation,
            "X-Amz-Date not in the basic ISO 8601 form",
            403,
            "IncompleteSignatureException",
            then_changed(operation, "X-Amz-Date", lambda: now().strftime("%Y-%m-%dT%H:%M:%SZ")),
        )
        yield mm(
            operation,
            "X-Amz-Date on another day than the credential scope",
            403,
            "InvalidSignatureException",
            then_changed(
                operation,
                "X-Amz-Date",
                lambda: (now() - timedelta(days=1)).strftime("%Y%m%dT%H%M%SZ"),
            ),
        )
        for region in ("eu-west-1", "us-east-2", "US-EAST-1", ""):
            yield mm(
                operation,
                f"credential scope region {region!r}",
                403,
                "InvalidSignatureException",
                signed_as(operation, region=region),
            )
        for service in ("mailmanager", "mail-manager", "s3", "SES", ""):
            yield mm(
                operation,
                f"credential scope service {service!r}",
                403,
                "IncompleteSignatureException",
                signed_as(operation, service=service),
            )
        yield mm(
            operation,
            "NUL in the access key id",
            403,
            "UnrecognizedClientException",
            signed_as(operation, key_id="AKIA\x00NULNULNULNULNU"),
            counted=True,
        )
    # awsJson calls carry no query string; one is ignored (and never a 5xx).
    yield mm(
        "GetRelay",
        "NUL in the query string",
        404,
        "ResourceNotFoundException",
        lambda w: mm_send(
            *mm_sign(w, "GetRelay", dump({"RelayId": "rl-missing"}), query="x=%00"),
            QUERY_STRING="x=%00",
        ),
    )


def next_token(list_key=LIST_KEY, secret=None, change=lambda t: t):
    def make(world):
        if secret is None:
            return change(make_token(list_key, world.ip.id, 0))
        with override_settings(SECRET_KEY=secret):
            return change(make_token(list_key, world.ip.id, 0))

    return make


def delete_spare(world):
    world.extra["gone"] = world.spare.pk
    RelayServer.objects.filter(pk=world.spare.pk).delete()


def token_rows():
    for wrong, make in [
        ("a GreenArrow relay_servers token", next_token("relay_servers")),
        ("a GreenArrow used_by token", next_token("used_by")),
        ("a token signed under another SECRET_KEY", next_token(secret=OTHER_SECRET_KEY)),
        ("a token cut by one character", next_token(change=lambda t: t[:-1])),
        ("a token cut in half", next_token(change=lambda t: t[: len(t) // 2])),
        ("a token without its signature", next_token(change=lambda t: t.rsplit(":", 1)[0])),
        (
            "a token with its last character changed",
            next_token(change=lambda t: t[:-1] + ("A" if t[-1] != "A" else "B")),
        ),
        ("an empty token", next_token(change=lambda t: "")),
    ]:
        yield mm(
            "ListRelays",
            f"NextToken: {wrong}",
            400,
            "ValidationException",
            lambda w, m=make: mm_call(w, "ListRelays", dump({"NextToken": m(w)})),
        )
    # Keyset tokens outlive the records they name (README, ListRelays): a documented success.
    yield mm(
        "ListRelays",
        "NextToken: its last record deleted since",
        200,
        None,
        lambda w: mm_call(
            w, "ListRelays", dump({"NextToken": make_token(LIST_KEY, w.extra["gone"], 0)})
        ),
        prepare=delete_spare,
    )


ROWS = [*signature_rows(), *token_rows()]


module_world, world = world_fixtures()
test_bad_input_gets_its_documented_4xx_and_changes_nothing = rows_test(ROWS)
