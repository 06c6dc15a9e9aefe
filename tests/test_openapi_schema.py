"""The OpenAPI schema of the GreenArrow API (/ga/api/v3/schema) and its docs page
(/ga/api/v3/docs): served without a login, a valid OpenAPI 3 document, and honest: every
answer in the envelope, the errors each operation gives, the field rules the serializers
enforce, the vendor's examples. tests/fuzz/ holds the schema against the running API."""

import re
from html.parser import HTMLParser

import jsonschema_rs
import pytest
import yaml
from django.core.management import call_command
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from relays import validators as v
from relays.greenarrow import schema as greenarrow_schema
from relays.models import LoginFailure

SCHEMA_URL, DOCS_URL = "/ga/api/v3/schema", "/ga/api/v3/docs"
GA = "/ga/api/v3/eng"
ID_PATHS = {"/relay_servers/{id}", "/ip_addresses/{id}", "/routing_rules/{id}"}

# Every operation of the API, and the errors it answers besides the ones all of them do
# (401 login, 403 permission, 429 lockout, 500, 503 database).
OPERATIONS = {
    **{
        (method, f"/{plural}{suffix}"): errors
        for plural in ("relay_servers", "ip_addresses", "routing_rules")
        for method, suffix, errors in [
            ("get", "", {400}),
            ("post", "", {400, 413}),
            ("get", "/{id}", {404}),
            ("put", "/{id}", {400, 404, 413}),
            ("delete", "/{id}", {404, 409}),
        ]
    },
    ("get", "/virtual_mtas"): {400},
    ("get", "/virtual_mtas/{id}/used_by"): {400, 404},
    ("get", "/virtual_mtas/default"): {400},
    ("put", "/virtual_mtas/default"): {400, 413},
}
COMMON = {401, 403, 429, 500, 503}


@pytest.fixture(scope="module")
def spec():
    return Client().get(SCHEMA_URL).json()


def operations(spec):
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield method, path.removeprefix(GA), operation


def resolve(spec, node):
    while "$ref" in node:
        kind, name = node["$ref"].split("/")[-2:]
        node = spec["components"][kind][name]
    return node


def validator(spec, schema):
    """An OpenAPI 3.0 validator for `schema`, its `#/components/...` references resolved in
    the whole document."""
    return OAS30Validator({"$ref": "#/x-target", "x-target": schema, **spec})


# --- Served, valid, no login ----------------------------------------------------------------


@pytest.mark.django_db
def test_the_schema_is_served_without_a_login_and_is_valid_openapi_3():
    response = Client().get(SCHEMA_URL)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    validate(response.json())
    assert response.json()["openapi"].startswith("3.0")


@pytest.mark.django_db
def test_wrong_credentials_do_not_stop_anyone_reading_it_nor_count_as_a_failed_login():
    client = Client(HTTP_AUTHORIZATION="Basic d3Jvbmc6d3Jvbmc=")  # wrong:wrong

    assert client.get(SCHEMA_URL).status_code == 200
    assert client.get(DOCS_URL).status_code == 200
    assert LoginFailure.objects.count() == 0


@pytest.mark.django_db
def test_yaml_on_request():
    as_json = Client().get(SCHEMA_URL).json()
    response = Client().get(SCHEMA_URL, {"format": "yaml"})

    assert response.status_code == 200
    assert yaml.safe_load(response.content) == as_json


def test_every_operation_is_there_once(spec):
    found = {(method, path) for method, path, _ in operations(spec)}

    assert found == set(OPERATIONS)
    ids = [operation["operationId"] for _, _, operation in operations(spec)]
    assert len(ids) == len(set(ids))


def test_every_operation_needs_http_basic(spec):
    scheme = spec["components"]["securitySchemes"]["basicAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "basic")
    for _, _, operation in operations(spec):
        assert operation["security"] == [{"basicAuth": []}]


# --- The envelope and the errors ------------------------------------------------------------


def test_every_operation_documents_exactly_the_errors_it_answers(spec):
    for method, path, operation in operations(spec):
        statuses = {int(status) for status in operation["responses"]}

        assert statuses == {200} | COMMON | OPERATIONS[method, path], (method, path)


def test_every_answer_is_the_envelope(spec):
    for method, path, operation in operations(spec):
        for status, response in operation["responses"].items():
            response = resolve(spec, response)
            body = resolve(spec, response["content"]["application/json"]["schema"])

            assert body["required"] == ["success", "data", "error_code", "error_messages"]
            assert body["additionalProperties"] is False
            assert body["properties"]["success"]["enum"] == [status == "200"], (method, path)


@pytest.mark.parametrize(
    ("status", "codes"),
    [
        (400, ["invalid_request", "validation_failed"]),
        (401, ["unauthorized"]),
        (403, ["forbidden"]),
        (404, ["not_found"]),
        (409, ["validation_failed"]),
        (413, ["invalid_request"]),
        (429, ["invalid_request"]),
        (500, ["internal_error"]),
        (503, ["internal_error"]),
    ],
)
def test_each_error_status_carries_the_codes_of_the_design(spec, status, codes):
    """DESIGN.md's table: the codes an error of this status has."""
    response = spec["components"]["responses"][greenarrow_schema.ERRORS[status][0]]
    body = resolve(spec, response["content"]["application/json"]["schema"])

    assert body["properties"]["error_code"]["enum"] == codes
    assert body["properties"]["data"]["enum"] == [None]
    assert body["properties"]["error_messages"]["minItems"] == 1


def test_401_and_429_document_their_headers(spec):
    assert "WWW-Authenticate" in spec["components"]["responses"]["Unauthorized"]["headers"]
    assert "Retry-After" in spec["components"]["responses"]["TooManyRequests"]["headers"]


@pytest.mark.django_db
def test_every_answer_documents_the_headers_it_has(spec, admin, anonymous):
    for response in [spec["components"]["responses"]["NotFound"]] + [
        operation["responses"]["200"] for _, _, operation in operations(spec)
    ]:
        assert set(response["headers"]) >= {"X-Request-Id", "Cache-Control"}
    for answer in [admin.get("/relay_servers"), anonymous.get("/relay_servers")]:
        assert answer["Cache-Control"] == "no-store"
        assert answer["X-Request-Id"]


@pytest.mark.django_db
def test_real_error_answers_fit_their_documented_schema(spec, admin, anonymous):
    answers = {
        400: admin.post("/relay_servers", {"relay_server": {"name": 5}}),
        401: anonymous.get("/relay_servers"),
        404: admin.get("/relay_servers/999"),
        413: admin.post("/relay_servers", raw="x" * (1024 * 1024 + 1)),
    }
    for status, answer in answers.items():
        assert answer.status_code == status
        name = greenarrow_schema.ERRORS[status][0]
        schema = spec["components"]["responses"][name]["content"]["application/json"]["schema"]
        assert validator(spec, schema).is_valid(answer.json()), answer.json()


# --- Shapes ---------------------------------------------------------------------------------


def test_create_requires_what_the_serializer_requires_and_put_requires_nothing(spec):
    schemas = spec["components"]["schemas"]

    assert sorted(schemas["RelayServerRequest"]["required"]) == [
        "destination",
        "name",
        "source_ip",
        "throttle_limits",
    ]
    assert "required" not in schemas["PatchedRelayServerRequest"]
    assert "required" not in schemas["PatchedDestinationRequest"]
    assert sorted(schemas["DestinationRequest"]["required"]) == ["hostname", "port"]
    # List items are written whole even inside a partial PUT.
    assert sorted(schemas["DeliverThroughRequest"]["required"]) == [
        "portion_of_mail",
        "virtual_mta",
    ]
    assert (
        schemas["PatchedRouteDefaultRequest"]["properties"]["deliver_through"]["items"]["$ref"]
        == "#/components/schemas/DeliverThroughRequest"
    )


def test_limits_and_nullability_are_those_of_the_serializers(spec):
    schemas = spec["components"]["schemas"]
    destination = schemas["DestinationRequest"]["properties"]
    throttle = schemas["ThrottleLimitsRequest"]["properties"]["max_messages_per_hour"]
    route = schemas["RouteDefaultRequest"]["properties"]["deliver_through"]
    override = schemas["DomainOverrideRequest"]["properties"]

    assert (destination["port"]["minimum"], destination["port"]["maximum"]) == (1, 65535)
    assert destination["password"]["nullable"] is True
    assert destination["password"]["maxLength"] == v.CREDENTIAL_MAX
    assert "nullable" not in destination["hostname"]
    assert (throttle["minimum"], throttle["maximum"]) == (0, v.INT32_MAX)
    assert (route["minItems"], route["maxItems"]) == (1, v.MAX_TARGETS_PER_ROUTE)
    assert (override["domains"]["minItems"], override["domains"]["maxItems"]) == (
        1,
        v.MAX_DOMAINS_PER_OVERRIDE,
    )
    assert (
        schemas["RoutingRuleRequest"]["properties"]["domain_overrides"]["maxItems"]
        == v.MAX_OVERRIDES_PER_RULE
    )
    assert {"type": "object", "nullable": True, "enum": [None]} in schemas["RelayServerRequest"][
        "properties"
    ]["redirect"]["anyOf"]
    portion = schemas["DeliverThroughRequest"]["properties"]["portion_of_mail"]
    assert (portion["minimum"], portion["exclusiveMinimum"], portion["maximum"]) == (
        0,
        True,
        v.PORTION_MAX,
    )


def test_objects_are_strict_and_answers_carry_every_attribute(spec):
    for name, schema in spec["components"]["schemas"].items():
        if schema.get("type") == "object" and "properties" in schema:
            assert schema["additionalProperties"] is False, name
            if not name.endswith("Request"):
                assert schema["required"] == list(schema["properties"]), name


@pytest.mark.django_db
def test_what_get_answered_fits_the_put_request_and_can_be_put_back(spec, admin):
    """Read-only attributes (`id`, a reference's `type`) are accepted and ignored."""
    from tests.conftest import relay_payload

    first = admin.post("/relay_servers", relay_payload(name="first")).json()["data"]
    second = admin.post(
        "/relay_servers", relay_payload(name="second", redirect={"name": "FIRST"})
    ).json()["data"]
    rule = admin.post(
        "/routing_rules",
        {
            "routing_rule": {
                "name": "rule",
                "default": {
                    "randomization_type": "random",
                    "deliver_through": [
                        {"virtual_mta": {"id": first["relay_server"]["id"]}, "portion_of_mail": 1}
                    ],
                },
                "domain_overrides": [
                    {
                        "domains": ["example.com"],
                        "randomization_type": "random",
                        "deliver_through": [
                            {"virtual_mta": {"name": "second"}, "portion_of_mail": 1}
                        ],
                    }
                ],
            }
        },
    ).json()["data"]
    for plural, body in [
        ("relay_servers", first),
        ("relay_servers", second),
        ("routing_rules", rule),
    ]:
        (record,) = body.values()
        operation = spec["paths"][f"{GA}/{plural}/{{id}}"]["put"]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]

        assert validator(spec, schema).is_valid(body), body
        again = admin.put(f"/{plural}/{record['id']}", body)
        assert again.status_code == 200
        assert again.json()["data"] == body


def test_a_reference_needs_an_id_or_a_name(spec):
    reference = validator(spec, {"$ref": "#/components/schemas/ReferenceRequest"})

    assert reference.is_valid({"id": 3})
    assert reference.is_valid({"name": "relay-1"})
    assert reference.is_valid({"id": 3, "name": "relay-1"})
    assert reference.is_valid({"type": "relay_server", "id": 3, "name": "relay-1"})
    assert not reference.is_valid({})
    assert not reference.is_valid({"type": "relay_server"})
    assert not reference.is_valid({"id": 0})
    assert not reference.is_valid({"slug": "x"})


# --- Field rules: the patterns accept exactly what the validators accept ---------------------


def accepts(validators, value):
    """What a StringField with these validators takes: text every database stores (its own
    check), then each validator."""
    try:
        for check in [v.storable, *validators]:
            check(value)
    except Exception:
        return False
    return True


def schema_for(validators):
    rules = greenarrow_schema.FIELD_RULES[tuple(validators)]
    # JSON Schema's own regular expressions (ECMA 262: `$` is the end, lookaheads) in Rust.
    return jsonschema_rs.validator_for(
        {"type": "string", **{k: x for k, x in rules.items() if k != "description"}}
    )


RULES = [
    v.NAME_VALIDATORS,
    v.HOSTNAME_VALIDATORS,
    v.HELO_VALIDATORS,
    [v.ipv4_dotted],
    v.CREDENTIAL_VALIDATORS,
    [v.domain_pattern],
    [],
]
# Characters each rule is about, and some it refuses: random text over them hits the edges.
ALPHABET = st.sampled_from(
    [*"aZ09.-_ ,#@*[]+\n\t\x00\x7f\x85\u200e\u202eé", "0", "1", "25", "255", "256"]
)
SAMPLES = st.one_of(
    st.lists(ALPHABET, max_size=12).map("".join),
    st.from_regex(r"(25[0-6]|2[0-4][0-9]|1?[0-9]{1,2}|0[0-9])(\.[0-9]{1,3}){3}", fullmatch=True),
    st.text(max_size=260),
    st.integers().map(str),
)


def _pattern_strategy(rules):
    return st.from_regex(rules["pattern"], fullmatch=True).filter(
        lambda s: rules.get("minLength", 0) <= len(s) <= rules.get("maxLength", 10**6)
    )


@pytest.mark.parametrize("validators", RULES, ids=lambda vs: "+".join(f.__name__ for f in vs))
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_each_string_rule_accepts_exactly_what_its_validators_accept(validators, data):
    rules = greenarrow_schema.FIELD_RULES[tuple(validators)]
    documented = schema_for(validators)
    value = data.draw(st.one_of(SAMPLES, _pattern_strategy(rules)))

    if accepts(validators, value):
        assert documented.is_valid(value), value
    elif documented.is_valid(value):
        # The one rule the schema states in words only: a domain's own 253 characters (the
        # schema allows 257 with any prefix; see FIELD_RULES).
        assert validators == [v.domain_pattern], value
        assert len(value.removeprefix("[*.]").removeprefix("*.")) > 253, value


def test_a_domain_longer_than_253_characters_is_the_documented_gap():
    long = ".".join(["a" * 63] * 4)  # 255 characters
    assert not accepts([v.domain_pattern], long)
    assert schema_for([v.domain_pattern]).is_valid(long)
    assert (
        "at most 253 characters"
        in greenarrow_schema.FIELD_RULES[(v.domain_pattern,)]["description"]
    )


def test_a_field_with_rules_the_schema_does_not_know_stops_the_schema():
    from relays.greenarrow.serializers import StrictSerializer, StringField

    class Odd(StrictSerializer):
        code = StringField(validators=[v.tag_key_characters])

    with pytest.raises(ValueError, match="describe them in FIELD_RULES"):
        greenarrow_schema.string_rules(Odd().fields["code"])


# --- Examples -------------------------------------------------------------------------------


def test_the_vendors_examples_are_there_and_fit_their_schemas(spec):
    checked = 0
    for method, path, operation in operations(spec):
        bodies = []
        request = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if request:
            bodies.append((request["schema"], request.get("examples", {})))
        ok = operation["responses"]["200"]["content"]["application/json"]
        bodies.append((ok["schema"], ok.get("examples", {})))
        for schema, examples in bodies:
            for name, example in examples.items():
                errors = [e.message for e in validator(spec, schema).iter_errors(example["value"])]
                assert not errors, (method, path, name, errors)
                checked += 1
    assert checked >= 20
    # The Relay Servers page's create example, verbatim.
    create = spec["paths"][f"{GA}/relay_servers"]["post"]
    assert create["requestBody"]["content"]["application/json"]["examples"]["NewRelayServer"][
        "value"
    ]["relay_server"]["redirect"] == {"name": "ipaddr-1"}


# --- Links ----------------------------------------------------------------------------------


def test_links_lead_from_a_created_record_to_its_uses(spec):
    ids = {operation["operationId"] for _, _, operation in operations(spec)}
    create = spec["paths"][f"{GA}/relay_servers"]["post"]["responses"]["200"]["links"]

    for link in create.values():
        assert link["operationId"] in ids
    assert create["GetRecord"]["parameters"] == {"id": "$response.body#/data/relay_server/id"}
    assert {create[name]["operationId"] for name in create} >= {
        "relay_servers_retrieve",
        "relay_servers_update",
        "relay_servers_destroy",
        "virtual_mtas_used_by",
        "virtual_mtas_default_update",
        "ip_addresses_create",
        "routing_rules_create",
    }


# --- The docs page --------------------------------------------------------------------------


class Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.urls.append(attrs["href"])


@pytest.mark.django_db
def test_the_docs_page_uses_only_its_own_static_files(settings, tmp_path):
    """With DEBUG off (as here) and after collectstatic, as `make serve` runs it: the page's
    JavaScript and CSS come from this server (WhiteNoise), never from a CDN."""
    settings.STATIC_ROOT = tmp_path
    call_command("collectstatic", "--noinput", verbosity=0)
    client = Client()  # a new handler: WhiteNoise reads the new STATIC_ROOT

    page = client.get(DOCS_URL)

    assert page.status_code == 200
    html = page.content.decode()
    assert not re.search(r"https?://", html)
    assert SCHEMA_URL in html
    parser = Assets()
    parser.feed(html)
    assert len(parser.urls) >= 3  # swagger-ui's CSS, its bundle and standalone preset
    for url in parser.urls:
        assert url.startswith("/static/drf_spectacular_sidecar/"), url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert b"".join(asset.streaming_content)
