"""The bad-input matrix, GreenArrow query strings and paths (see test_bad_input_matrix.py):
page numbers out of range or not integers, page tokens that are foreign, stale or truncated,
NUL and surrogate bytes in parameters and ids, ids past 2^63; each answered with the
envelope's documented status and error_code, and no table changed."""

from django.test import override_settings

from relays.models import RelayServer
from relays.tokens import make_token
from tests.test_bad_input_matrix import OTHER_SECRET_KEY, row, rows_test, world_fixtures
from tests.test_bad_input_matrix_requests import GA_OPERATIONS, ga_get

GA = "/ga/api/v3/eng"
BAD_PAGE = ["page must be an integer from 0 to 999999999"]
BAD_TOKEN = ["page_token is not a valid page token for this list"]
# operation -> (path, the list's token key); used_by's path needs the world.
LISTS = {
    "GET /relay_servers": ("/relay_servers", "relay_servers"),
    "GET /ip_addresses": ("/ip_addresses", "ip_addresses"),
    "GET /routing_rules": ("/routing_rules", "routing_rules"),
    "GET /virtual_mtas": ("/virtual_mtas", "virtual_mtas"),
    "GET /virtual_mtas/{id}/used_by": (None, "used_by"),
}
PAGES = {  # raw query value
    "-1": "-1",
    "-2^63-1": "-9223372036854775809",
    "10^9": "1000000000",
    "2^63": "9223372036854775808",
    "10^30": "1" + "0" * 30,
    "1.0": "1.0",
    "1.5": "1.5",
    "1e3": "1e3",
    "true": "true",
    "+1": "%2B1",
    "' 1'": "%201",
    "an Arabic-Indic 1": "%D9%A1",
    "empty": "",
    "surrogate bytes": "%ED%A0%80",
}
# Every page value and token on both paging paths (a table's and used_by's computed list);
# the other lists take the table's path too, so a sample of each there.
THOROUGH = {"GET /relay_servers", "GET /virtual_mtas/{id}/used_by"}
SAMPLED = {"-1", "2^63", "1e3", "another list's token", "a token signed under another SECRET_KEY"}


def ga(operation, wrong, status, code, send, **options):
    return row("GreenArrow", operation, wrong, status, code, send, **options)


def list_path(operation, world):
    return LISTS[operation][0] or f"/virtual_mtas/{world.relay.id}/used_by"


def query(operation, text):
    return lambda w: ga_get(w, list_path(operation, w), text)


def token(list_key, secret=None, after=None, change=lambda t: t):
    """token(world): a page token of `list_key` (after the IP address's id, or after(world)),
    signed under `secret` if given, then change(token)."""

    def make(world):
        position = world.ip.id if after is None else after(world)
        if secret is None:
            return change(make_token(list_key, position, 1))
        with override_settings(SECRET_KEY=secret):
            return change(make_token(list_key, position, 1))

    return make


def with_token(operation, make, prefix=""):
    return lambda w: ga_get(w, list_path(operation, w), f"{prefix}page_token={make(w)}")


def delete_spare(world):
    world.extra["gone"] = world.spare.pk
    RelayServer.objects.filter(pk=world.spare.pk).delete()


def list_rows():
    for operation, (_, list_key) in LISTS.items():
        for wrong, value in PAGES.items():
            if operation not in THOROUGH and wrong not in SAMPLED:
                continue
            yield ga(
                operation,
                f"page={wrong}",
                400,
                "invalid_request",
                query(operation, f"page={value}"),
                messages=BAD_PAGE,
            )
        yield ga(
            operation,
            "page=NUL",
            400,
            "invalid_request",
            query(operation, "page=%00"),
            messages=["page must be text without NUL characters"],
        )
        yield ga(
            operation,
            "page=999999999, the last page there may be",
            200,
            None,
            query(operation, "page=999999999"),
        )
        other = "ip_addresses" if list_key == "relay_servers" else "relay_servers"
        for wrong, make in [
            ("another list's token", token(other)),
            ("a Mail Manager NextToken", token("mailmanager.relays")),
            ("a token signed under another SECRET_KEY", token(list_key, OTHER_SECRET_KEY)),
            ("a token cut by one character", token(list_key, change=lambda t: t[:-1])),
            ("a token cut in half", token(list_key, change=lambda t: t[: len(t) // 2])),
            (
                "a token without its signature",
                token(list_key, change=lambda t: t.rsplit(":", 1)[0]),
            ),
            (
                "a token with its last character changed",
                token(list_key, change=lambda t: t[:-1] + ("A" if t[-1] != "A" else "B")),
            ),
            ("an empty token", token(list_key, change=lambda t: "")),
            (
                "surrogate bytes in a token",
                token(list_key, change=lambda t: t[:5] + "%ED%A0%80" + t[5:]),
            ),
        ]:
            if operation not in THOROUGH and wrong not in SAMPLED:
                continue
            yield ga(
                operation,
                f"page_token: {wrong}",
                400,
                "invalid_request",
                with_token(operation, make),
                messages=BAD_TOKEN,
            )
        yield ga(
            operation,
            "page_token: NUL in a token",
            400,
            "invalid_request",
            with_token(operation, token(list_key, change=lambda t: t[:5] + "%00" + t[5:])),
            messages=["page_token must be text without NUL characters"],
        )
        yield ga(
            operation,
            "page and page_token together",
            400,
            "invalid_request",
            with_token(operation, token(list_key), prefix="page=0&"),
            messages=["give page or page_token, not both"],
        )
        # Keyset tokens outlive the records they name (README, Lists): a documented success.
        yield ga(
            operation,
            "page_token: its last record deleted since",
            200,
            None,
            with_token(operation, token(list_key, after=lambda w: w.extra["gone"])),
            prepare=delete_spare,
        )
        yield ga(
            operation,
            "NUL as a query parameter's name",
            400,
            "invalid_request",
            query(operation, "%00=1"),
            messages=["unknown query parameter \x00"],
        )
    for parameter in ("name", "hostname", "ip"):
        yield ga(
            "GET /ip_addresses",
            f"NUL in {parameter}=",
            400,
            "invalid_request",
            query("GET /ip_addresses", f"{parameter}=10.0.0.1%00"),
            messages=[f"{parameter} must be text without NUL characters"],
        )
    # Django decodes bytes that are not UTF-8 (a surrogate's CESU-8) as U+FFFD: storable text
    # that matches no name, and no IPv4 address.
    for parameter in ("name", "hostname"):
        yield ga(
            "GET /ip_addresses",
            f"surrogate bytes in {parameter}= (found nothing)",
            200,
            None,
            query("GET /ip_addresses", f"{parameter}=%ED%A0%80"),
        )
    yield ga(
        "GET /ip_addresses",
        "surrogate bytes in ip=",
        400,
        "invalid_request",
        query("GET /ip_addresses", "ip=%ED%A0%80"),
        messages=["ip must be a valid IPv4 address in dotted-decimal notation"],
    )
    for path in ("/virtual_mtas/default", "/relay_servers"):
        yield ga(
            f"GET {path}",
            "NUL in an unknown query parameter",
            400,
            "invalid_request",
            lambda w, p=path: ga_get(w, p, "x=%00"),
            messages="unknown query parameter x",
        )


ROOTS = {
    "relay_servers": "relay_server",
    "ip_addresses": "ip_address",
    "routing_rules": "routing_rule",
}


def path_rows():
    for kind, root in ROOTS.items():
        for wrong, segment in [
            ("NUL as the id", "%00"),
            ("NUL after the id", "1%00"),
            ("surrogate bytes as the id", "%ED%A0%80"),
            ("-1 as the id", "-1"),
            ("1.0 as the id", "1.0"),
            ("1e3 as the id", "1e3"),
            ("-2^63-1 as the id", "-9223372036854775809"),
        ]:
            yield ga(
                f"GET /{kind}/{{id}}",
                wrong,
                404,
                "not_found",
                lambda w, k=kind, s=segment: w.ga.client.get(f"{GA}/{k}/{s}"),
                messages="no such resource: ",
            )
        for method in ("GET", "PUT", "DELETE"):
            for wrong, number in [("2^63", 2**63), ("2^64", 2**64), ("10^30", 10**30)]:
                yield ga(
                    f"{method} /{kind}/{{id}}",
                    f"{wrong} as the id",
                    404,
                    "not_found",
                    lambda w, k=kind, m=method, n=number, r=root: w.ga.call(
                        m, f"/{k}/{n}", {r: {}}
                    ),
                    messages=[f"no {root} with id {number}"],
                )
    yield ga(
        "GET /virtual_mtas/{id}/used_by",
        "2^63 as the id",
        404,
        "not_found",
        lambda w: ga_get(w, f"/virtual_mtas/{2**63}/used_by"),
        messages=[f"no VirtualMTA with id {2**63}"],
    )
    # Only lists take parameters (paging, filters): a single record's GET and DELETE, and every
    # write with its valid body, refuse an unknown one rather than ignore it.
    for method in ("GET", "DELETE"):
        yield ga(
            f"{method} /relay_servers/{{id}}",
            "NUL in an unknown query parameter",
            400,
            "invalid_request",
            lambda w, m=method: w.ga.call(m, f"/relay_servers/{w.spare.id}", QUERY_STRING="x=%00"),
            messages=["unknown query parameter x"],
        )
    for operation, (method, path, body) in GA_OPERATIONS.items():
        yield ga(
            operation,
            "an unknown query parameter",
            400,
            "invalid_request",
            lambda w, m=method, p=path, b=body: w.ga.call(m, p(w), b(w), QUERY_STRING="page=1&x=1"),
            messages=["unknown query parameter page", "unknown query parameter x"],
        )


ROWS = [*list_rows(), *path_rows()]


module_world, world = world_fixtures()
test_bad_input_gets_its_documented_4xx_and_changes_nothing = rows_test(ROWS)
