"""The Mail Manager facade fuzzed from botocore's own `mailmanager` model (tests/mailmanager_model.py).

Requests are generated from the model's shapes (lengths, patterns, ranges, unions, required
members) and sent as raw JSON signed by botocore (tests/signed.py), so botocore's client-side
validation is not in the way; a few go through boto3 itself with parameter_validation off.

- valid inputs succeed, and what was written is what GetRelay, ListRelays and
  ListTagsForResource read back;
- an input with one constraint broken is a ValidationException (400) and changes nothing;
- whatever the body, every error is one the model declares for the operation (or a common
  one) with its modelled status, never a 5xx, and every success matches the output shape.

Then one regression test per finding of the first model-driven pass.
"""

import json
from contextlib import contextmanager

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relays.mailmanager import views
from relays.models import ClientToken, RelayServer, RelayTag, relay_arn
from tests import mailmanager_model as m
from tests import signed
from tests.conftest import GreenArrowClient, relay_payload
from tests.factories import RelayServerFactory, UserFactory

pytestmark = pytest.mark.django_db


def fuzz(examples):
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


STATUS = {  # the modelled status of every error this server may answer
    **{
        e.name: e.metadata["error"]["httpStatusCode"]
        for op in m.OPERATIONS
        for e in m.MODEL.operation_model(op).error_shapes
    },
    "UnrecognizedClientException": 403,
    "InvalidSignatureException": 403,
    "IncompleteSignatureException": 403,
    "AccessDeniedException": 403,
    "ThrottlingException": 429,
    "SerializationException": 400,
    "UnknownOperationException": 400,
}
GREENARROW_OUTPUT = frozenset(
    {"GetRelayResponse.RelayName", "GetRelayResponse.ServerName", "Relay.RelayName"}
)


@pytest.fixture
def key(db):
    UserFactory(username="fuzz", is_superuser=True)
    return signed.new_key("fuzz")


def send(key, operation, body, *, lenient=frozenset()):
    """(status, parsed answer) of a signed call; the answer is checked against the model."""
    response = signed.call(key, operation, body)
    assert response["Content-Type"] == signed.CONTENT_TYPE
    payload = json.loads(response.content)
    status = response.status_code
    assert status < 500, (operation, body, payload)
    if status == 200:
        shape = m.MODEL.operation_model(operation).output_shape
        assert m.violations(shape, payload, lenient) == [], (operation, payload)
    else:
        assert m.error_is_declared(operation, status, payload) == [], (operation, payload)
        name = payload["__type"].rpartition("#")[2]
        assert STATUS[name] == status, (name, status)
        assert response["X-Amzn-Errortype"] == name
    return status, payload


def error_name(payload):
    return payload.get("__type", "").rpartition("#")[2]


def counts():
    return (RelayServer.objects.count(), ClientToken.objects.count(), RelayTag.objects.count())


@contextmanager
def clean_slate():
    """Each example starts from the same database: no relay, token or tag left by the last."""
    try:
        yield
    finally:
        ClientToken.objects.all().delete()
        RelayServer.objects.all().delete()


def shape_of(name):
    return m.MODEL.shape_for(name)


def expected_auth(auth):
    """The union as GetRelay answers it: the one non-null member."""
    return {k: v for k, v in auth.items() if v is not None}


def tags_of(tag_list):
    return {t["Key"]: t["Value"] for t in tag_list or []}


# --- valid writes round-trip -------------------------------------------------------------------


def all_relays(key, page_size):
    body, relays = {"PageSize": page_size}, []
    while True:
        status, page = send(key, "ListRelays", body)
        assert status == 200
        relays += page["Relays"]
        if "NextToken" not in page:
            return relays
        body = {"PageSize": page_size, "NextToken": page["NextToken"]}


@fuzz(40)
@given(data=st.data())
def test_valid_writes_round_trip_through_the_reads(key, data):
    with clean_slate():
        create = data.draw(m.request("CreateRelay"), label="CreateRelay")
        status, created = send(key, "CreateRelay", create)
        assert status == 200, created
        relay_id = created["RelayId"]
        if create.get("ClientToken") is not None:  # a retry creates nothing
            assert send(key, "CreateRelay", create) == (200, created)
        expected = {
            "RelayId": relay_id,
            "RelayArn": relay_arn(relay_id),
            "RelayName": create["RelayName"],
            "ServerName": create["ServerName"],
            "ServerPort": create["ServerPort"],
            "Authentication": expected_auth(create["Authentication"]),
        }
        status, got = send(key, "GetRelay", {"RelayId": relay_id})
        assert {k: got[k] for k in expected} == expected
        assert got["CreatedTimestamp"] <= got["LastModifiedTimestamp"]
        arn = got["RelayArn"]
        tags = tags_of(create.get("Tags"))
        assert tags_of(send(key, "ListTagsForResource", {"ResourceArn": arn})[1]["Tags"]) == tags

        update = data.draw(
            m.request("UpdateRelay", overrides={"UpdateRelayRequest.RelayId": st.just(relay_id)}),
            label="UpdateRelay",
        )
        assert send(key, "UpdateRelay", update) == (200, {})
        for member in ("RelayName", "ServerName", "ServerPort", "Authentication"):
            if update.get(member) is not None:
                expected[member] = update[member]
        expected["Authentication"] = expected_auth(expected["Authentication"])
        status, after = send(key, "GetRelay", {"RelayId": relay_id})
        assert {k: after[k] for k in expected} == expected
        assert after["LastModifiedTimestamp"] >= got["LastModifiedTimestamp"]

        tag = data.draw(
            m.request("TagResource", overrides={"TagResourceRequest.ResourceArn": st.just(arn)}),
            label="TagResource",
        )
        merged = {**tags, **tags_of(tag["Tags"])}
        status, answer = send(key, "TagResource", tag)
        if len(merged) > 50:  # the per-relay quota: the model's own error, nothing written
            assert (status, error_name(answer)) == (402, "ServiceQuotaExceededException")
        else:
            assert (status, answer) == (200, {})
            tags = merged
        keys = st.sampled_from(sorted(tags)) if tags else st.nothing()
        tag_key = m.valid(shape_of("TagKey"), rule=m.SERVER_RULES["TagKey"])
        untag = data.draw(
            m.request(
                "UntagResource",
                overrides={
                    "UntagResourceRequest.ResourceArn": st.just(arn),
                    "UntagResourceRequest.TagKeys": st.lists(keys | tag_key, max_size=8),
                },
            ),
            label="UntagResource",
        )
        assert send(key, "UntagResource", untag) == (200, {})
        tags = {k: v for k, v in tags.items() if k not in untag["TagKeys"]}
        assert tags_of(send(key, "ListTagsForResource", {"ResourceArn": arn})[1]["Tags"]) == tags

        page_size = data.draw(st.integers(1, 50), label="PageSize")
        [listed] = [r for r in all_relays(key, page_size) if r["RelayId"] == relay_id]
        assert listed["RelayName"] == expected["RelayName"]
        assert listed["LastModifiedTimestamp"] == after["LastModifiedTimestamp"]

        assert send(key, "DeleteRelay", {"RelayId": relay_id}) == (200, {})
        status, gone = send(key, "GetRelay", {"RelayId": relay_id})
        assert (status, error_name(gone)) == (404, "ResourceNotFoundException")


# --- one constraint broken: ValidationException ------------------------------------------------


@pytest.fixture
def existing(db):
    """A relay that broken calls may name: they must leave it as it is."""
    relay = RelayServerFactory(name="fuzz-existing", with_auth=True)
    return relay


def known_or_random(existing):
    """Overrides: RelayId and ResourceArn name the existing relay half of the time."""
    ids = st.just(existing.relay_id) | m.valid(shape_of("RelayId"))
    arns = st.just(existing.arn) | m.valid(shape_of("TaggableResourceArn"))
    return {
        **{f"{op}Request.RelayId": ids for op in ("GetRelay", "UpdateRelay", "DeleteRelay")},
        **{
            f"{op}Request.ResourceArn": arns
            for op in ("TagResource", "UntagResource", "ListTagsForResource")
        },
    }


@fuzz(300)
@given(data=st.data())
def test_each_constraint_broken_alone_is_a_validation_exception(key, existing, data):
    operation = data.draw(st.sampled_from(m.OPERATIONS), label="operation")
    body, site = data.draw(m.broken(operation, overrides=known_or_random(existing)), label="body")
    shape = m.MODEL.operation_model(operation).input_shape
    assert m.violations(shape, body, rules=m.SERVER_RULES), site  # the generator broke it
    before = counts()
    existing.refresh_from_db()
    snapshot = (existing.name, existing.destination_port, existing.updated_at)

    status, answer = send(key, operation, body)

    assert (status, error_name(answer)) == (400, "ValidationException"), (str(site), answer)
    assert site.member in answer["Message"], (str(site), answer)  # the member is named
    assert "Ensure this value" not in answer["Message"]  # the API's words, not a column's
    assert counts() == before
    existing.refresh_from_db()
    assert (existing.name, existing.destination_port, existing.updated_at) == snapshot


# --- whatever the body: a declared answer ------------------------------------------------------


def any_body(operation):
    shape = m.MODEL.operation_model(operation).input_shape
    # Unknown members are ignored, but any character may be in their names: NUL and lone
    # surrogates too (refused with a ValidationException).
    member_names = st.sampled_from(sorted(shape.members)) | st.text(max_size=6)
    return st.one_of(
        m.request(operation, success=False),
        m.broken(operation).map(lambda pair: pair[0]),
        st.dictionaries(member_names, m._JSON, max_size=5),
        m._JSON,  # not an object at all: SerializationException
    )


@fuzz(150)
@given(data=st.data())
def test_every_answer_is_declared_by_the_model(key, data):
    with clean_slate():
        operation = data.draw(st.sampled_from(m.OPERATIONS), label="operation")
        body = data.draw(any_body(operation), label="body")
        send(key, operation, body)  # checks the answer against the model


def test_the_generator_handles_enums_too():
    """No input of the eight operations has an enum; the generator's enum support is checked on
    the model's other shapes."""
    enums = [shape_of(n) for n in m.MODEL.shape_names if getattr(shape_of(n), "enum", None)]

    @fuzz(30)
    @given(data=st.data())
    def check(data):
        shape = data.draw(st.sampled_from(enums))
        value = data.draw(m.valid(shape))
        assert value in shape.enum and m.violations(shape, value) == []
        [site] = [s for s in m.sites(shape, value) if s.rule == "outside the enum"]
        assert m.violations(shape, data.draw(site.make()))

    check()


# --- through boto3 itself, client-side validation off ------------------------------------------


def _boto3_can_send(site):
    """botocore's serializer walks structures and lists: a wrong type or a null there never
    leaves the client (it raises before sending), so those sites are not drawn here."""
    container = site.kind in ("structure", "list")
    wrong = site.rule.startswith("wrong JSON type") or site.rule.endswith("null")
    return not (container and wrong) and site.rule != "null list item"


SNAKE = {
    op: "".join(f"_{c.lower()}" if c.isupper() else c for c in op).lstrip("_")
    for op in m.OPERATIONS
}


@pytest.mark.django_db(transaction=True)
@fuzz(30)
@given(data=st.data())
def test_broken_inputs_through_boto3_are_validation_exceptions_never_retried(retrying_client, data):
    client = retrying_client
    operation = data.draw(st.sampled_from(m.OPERATIONS), label="operation")
    # botocore cannot send a null member either (a null structure raises in its serializer).
    body, site = data.draw(m.broken(operation, accept=_boto3_can_send, nulls=False), label="body")

    with pytest.raises(ClientError) as refused:
        getattr(client, SNAKE[operation])(**body)

    answer = refused.value.response
    assert answer["Error"]["Code"] == "ValidationException", (str(site), answer["Error"])
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert answer["ResponseMetadata"]["RetryAttempts"] == 0


# --- regressions: the first model-driven pass's findings ---------------------------------------

RELAY = {
    "RelayName": "r1",
    "ServerName": "smtp.example.com",
    "ServerPort": 587,
    "Authentication": {"NoAuthentication": {}},
}


def refused(key, operation, body):
    status, answer = send(key, operation, body)
    assert (status, error_name(answer)) == (400, "ValidationException"), answer
    return answer["Message"]


def unchecked_client(live_server):
    """boto3 as a user runs it (the standard three attempts), client-side validation off."""
    UserFactory(username="admin", is_superuser=True)
    key = signed.new_key("admin")
    return boto3.client(
        "mailmanager",
        endpoint_url=live_server.url,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        config=Config(parameter_validation=False, retries={"max_attempts": 3, "mode": "standard"}),
    )


@pytest.fixture
def retrying_client(live_server):
    return unchecked_client(live_server)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("token", ["tok\ud800en", "\udfff", "tok\x00en"])
def test_1_an_unstorable_client_token_is_a_400_boto3_does_not_retry(retrying_client, token):
    with pytest.raises(ClientError) as caught:
        retrying_client.create_relay(**RELAY, ClientToken=token)

    answer = caught.value.response
    assert answer["Error"]["Code"] == "ValidationException"
    assert "ClientToken" in answer["Error"]["Message"]
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert answer["ResponseMetadata"]["RetryAttempts"] == 0
    assert not RelayServer.objects.exists() and not ClientToken.objects.exists()


@pytest.mark.parametrize(
    "digits",
    [
        "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662",  # Arabic-Indic
        "\u0967" * 12,  # Devanagari
        "\uff11" * 12,  # fullwidth
        "12345678901\u0662",  # one of twelve
    ],
)
def test_2_a_secret_arn_account_of_non_ascii_digits_is_refused(key, digits):
    arn = f"arn:aws:secretsmanager:us-east-1:{digits}:secret:x"

    message = refused(key, "CreateRelay", {**RELAY, "Authentication": {"SecretArn": arn}})

    assert "Authentication.SecretArn" in message
    assert not RelayServer.objects.exists()


def test_2_the_signature_header_separators_are_ascii_spaces(key):
    headers, body = signed.sign(key, "ListRelays", {})
    headers["Authorization"] = headers["Authorization"].replace(", ", ",\xa0")

    response = signed.send(headers, body)

    assert response.status_code == 403
    assert error_name(json.loads(response.content)) == "IncompleteSignatureException"


def test_3_a_body_over_one_mebibyte_is_a_validation_exception_400(key):
    over = {"NextToken": "x" * (1024 * 1024)}

    status, answer = send(key, "ListRelays", over)

    assert (status, error_name(answer)) == (400, "ValidationException")
    assert answer["Message"] == "the request body is larger than 1 MiB"
    assert set(answer) == {"__type", "Message"}  # the shape of every ValidationException


@pytest.mark.django_db(transaction=True)
def test_3_boto3_gets_the_oversized_body_as_a_validation_exception_once(retrying_client):
    with pytest.raises(retrying_client.exceptions.ValidationException) as caught:
        retrying_client.list_relays(NextToken="x" * (1024 * 1024))

    assert caught.value.response["ResponseMetadata"]["RetryAttempts"] == 0


def sign_raw(key, operation, raw):
    """Headers of `raw` bytes signed by botocore as the body of `operation`."""
    headers = {"Content-Type": signed.CONTENT_TYPE, "X-Amz-Target": f"MailManagerSvc.{operation}"}
    aws = AWSRequest(method="POST", url=f"http://{signed.HOST}/", data=raw, headers=headers)
    credentials = Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    SigV4Auth(credentials, "ses", "us-east-1").add_auth(aws)
    return {**headers, **{name: aws.headers[name] for name in ("X-Amz-Date", "Authorization")}}


def test_3_a_body_of_exactly_one_mebibyte_is_read(key):
    text = json.dumps({"PageSize": 5})
    padded = (text[:-1] + " " * (1024 * 1024 - len(text)) + "}").encode()
    assert len(padded) == 1024 * 1024

    response = signed.send(sign_raw(key, "ListRelays", padded), padded)

    assert response.status_code == 200, response.content


def test_4_a_null_member_is_an_absent_one(key):
    status, created = send(
        key,
        "CreateRelay",
        {
            **RELAY,
            "Tags": None,
            "ClientToken": None,
            "Authentication": {"SecretArn": None, "NoAuthentication": {}},
        },
    )
    assert status == 200, created
    relay_id = created["RelayId"]
    arn = relay_arn(relay_id)

    assert send(key, "ListRelays", {"PageSize": None, "NextToken": None})[0] == 200
    update = {"RelayId": relay_id, "RelayName": None, "ServerName": None, "ServerPort": None}
    assert send(key, "UpdateRelay", {**update, "Authentication": None}) == (200, {})
    tags = [{"Key": "k", "Value": "v", "Other": None}]
    assert send(key, "TagResource", {"ResourceArn": arn, "Tags": tags}) == (200, {})
    got = send(key, "GetRelay", {"RelayId": relay_id})[1]
    assert (got["RelayName"], got["ServerPort"], got["Authentication"]) == (
        "r1",
        587,
        {"NoAuthentication": {}},
    )
    assert send(key, "ListTagsForResource", {"ResourceArn": arn})[1] == {
        "Tags": [{"Key": "k", "Value": "v"}]
    }


@pytest.mark.parametrize(
    ("operation", "body", "member"),
    [
        ("CreateRelay", {**RELAY, "RelayName": None}, "RelayName is required"),
        ("CreateRelay", {**RELAY, "Authentication": None}, "Authentication is required"),
        ("CreateRelay", {**RELAY, "Tags": [None]}, "Tags[0]"),
        ("CreateRelay", {**RELAY, "Tags": [{"Key": "k", "Value": None}]}, "Tags[0]"),
        ("GetRelay", {"RelayId": None}, "RelayId is required"),
        ("TagResource", {"ResourceArn": relay_arn("rl-x"), "Tags": None}, "Tags is required"),
        (
            "UntagResource",
            {"ResourceArn": relay_arn("rl-x"), "TagKeys": None},
            "TagKeys is required",
        ),
        ("ListTagsForResource", {"ResourceArn": None}, "ResourceArn is required"),
    ],
)
def test_4_a_null_required_member_is_a_missing_one(key, operation, body, member):
    assert member in refused(key, operation, body)


def test_4_a_null_member_does_not_change_what_a_client_token_stands_for(key):
    first = send(key, "CreateRelay", {**RELAY, "ClientToken": "t-1"})[1]
    again = send(key, "CreateRelay", {**RELAY, "ClientToken": "t-1", "Tags": None})[1]

    assert again == first
    assert RelayServer.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_4_boto3_may_send_nulls(retrying_client):
    assert retrying_client.list_relays(PageSize=None, NextToken=None)["Relays"] == []


def test_5_a_secret_arn_over_2048_characters_is_refused_in_the_apis_words(key):
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
    longest = arn + "x" * (2048 - len(arn))

    message = refused(key, "CreateRelay", {**RELAY, "Authentication": {"SecretArn": longest + "x"}})
    relay_id = send(key, "CreateRelay", {**RELAY, "Authentication": {"SecretArn": longest}})[1][
        "RelayId"
    ]

    assert message == "Authentication.SecretArn must be at most 2048 characters long"
    got = send(key, "GetRelay", {"RelayId": relay_id})[1]
    assert got["Authentication"] == {"SecretArn": longest}
    update = {"RelayId": relay_id, "Authentication": {"SecretArn": longest + "x"}}
    assert refused(key, "UpdateRelay", update) == message


SHORTEST_PREFIX = "arn:aws:ses:a:000000000000:addon-"


@pytest.mark.parametrize("length", [34, 1003, 1004, 1008, 1011])
@pytest.mark.parametrize("operation", ["TagResource", "UntagResource", "ListTagsForResource"])
def test_6_every_resource_arn_the_model_allows_is_read(key, operation, length):
    arn = SHORTEST_PREFIX + "x" * (length - len(SHORTEST_PREFIX))
    body = {"ResourceArn": arn, "Tags": [], "TagKeys": []}
    body = {
        k: v for k, v in body.items() if k in m.MODEL.operation_model(operation).input_shape.members
    }

    status, answer = send(key, operation, body)

    assert (status, error_name(answer)) == (404, "ResourceNotFoundException")


@pytest.mark.parametrize(
    "arn",
    [
        SHORTEST_PREFIX + "x" * (1012 - len(SHORTEST_PREFIX)),  # over the model's 1011
        SHORTEST_PREFIX + "x\ny",  # the model's `.` takes no line terminator
        SHORTEST_PREFIX + "x\r",
        SHORTEST_PREFIX + "\u2028",
        "arn:aws:ses:us-east-1:\u0661\u0662\u0663456789012:mailmanager-x",
    ],
)
def test_6_a_resource_arn_the_model_refuses_is_a_validation_exception(key, arn):
    assert "ResourceArn" in refused(key, "ListTagsForResource", {"ResourceArn": arn})


GREENARROW_MADE = [
    ("has space", "smtp-relay.example.com"),  # Mail Manager: no space in RelayName
    ("dotted.name", "h" * 150 + ".example.com"),  # no '.' in RelayName; ServerName over 100
    ("n" * 150, "smtp.example.com"),  # RelayName over 100
]


def test_7_greenarrow_relays_outside_the_output_patterns_are_returned_as_they_are(key):
    ga = GreenArrowClient("fuzz")
    ids = []
    for name, hostname in GREENARROW_MADE:
        payload = relay_payload(name=name)
        payload["relay_server"]["destination"]["hostname"] = hostname
        assert ga.post("/relay_servers", payload).status_code == 200
        ids.append(RelayServer.objects.get(name=name).relay_id)

    for (name, hostname), relay_id in zip(GREENARROW_MADE, ids, strict=True):
        got = send(key, "GetRelay", {"RelayId": relay_id}, lenient=GREENARROW_OUTPUT)[1]
        assert (got["RelayName"], got["ServerName"]) == (name, hostname)
        shape = m.MODEL.operation_model("GetRelay").output_shape
        strict = m.violations(shape, got)
        assert strict and all(".RelayName:" in p or ".ServerName:" in p for p in strict)
        # Another member can be written without first renaming the relay.
        assert send(key, "UpdateRelay", {"RelayId": relay_id, "ServerPort": 2525}) == (200, {})
        # Written back as read, the name is checked as any input is.
        assert "RelayName" in refused(key, "UpdateRelay", {"RelayId": relay_id, "RelayName": name})
    listed = send(key, "ListRelays", {}, lenient=GREENARROW_OUTPUT)[1]["Relays"]
    assert [r["RelayName"] for r in listed] == [name for name, _ in GREENARROW_MADE]


@pytest.mark.django_db(transaction=True)
def test_7_boto3_reads_greenarrow_names_unchanged(mm):
    RelayServerFactory(name="has space", destination_hostname="smtp_relay.example.com")

    [listed] = mm.list_relays()["Relays"]
    got = mm.get_relay(RelayId=listed["RelayId"])

    assert listed["RelayName"] == got["RelayName"] == "has space"
    assert got["ServerName"] == "smtp_relay.example.com"


# --- found by this fuzz ------------------------------------------------------------------------


def test_update_checks_its_members_before_looking_the_relay_up(key):
    """A malformed UpdateRelay is a ValidationException whether or not its relay exists (it
    was ResourceNotFoundException for an unknown RelayId)."""
    assert "RelayName" in refused(key, "UpdateRelay", {"RelayId": "rl-none", "RelayName": "a b"})


def test_create_checks_its_members_before_the_tag_quota(key):
    """51 valid tags and a malformed name: the ValidationException, not the quota's error."""
    tags = [{"Key": f"k{n}", "Value": "v"} for n in range(51)]

    assert "RelayName" in refused(key, "CreateRelay", {**RELAY, "RelayName": "a b", "Tags": tags})


def test_a_relays_own_secret_arn_without_stored_credentials_is_kept_as_sent(key):
    """The ARN of a relay's own stored credentials, written to a relay that has none, is an
    external secret like any other: GetRelay answers what was written."""
    relay_id = send(key, "CreateRelay", RELAY)[1]["RelayId"]
    own = RelayServer.objects.get(relay_id=relay_id).own_secret_arn

    send(key, "UpdateRelay", {"RelayId": relay_id, "Authentication": {"SecretArn": own}})

    got = send(key, "GetRelay", {"RelayId": relay_id})[1]
    assert got["Authentication"] == {"SecretArn": own}


def test_an_unforeseen_error_is_a_json_internal_failure(key, monkeypatch):
    def broken(body, user):
        raise RuntimeError("a bug")

    monkeypatch.setitem(views.OPERATIONS, "ListRelays", (broken, "relays.view_relayserver"))

    response = signed.call(key, "ListRelays", {})

    assert response.status_code == 500
    assert response["Content-Type"] == signed.CONTENT_TYPE
    assert json.loads(response.content) == {
        "__type": "com.amazonaws.mailmanager#InternalFailure",
        "Message": "the request could not be processed",
    }
