"""The Mail Manager relay operations, driven by the real boto3 client against a live server."""

import json

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from relays.models import RelayServer
from tests.conftest import GreenArrowClient, client_for, create, relay_payload
from tests.factories import RelayServerFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_create_then_get_answers_every_member(mm):
    relay_id = create(mm)

    got = mm.get_relay(RelayId=relay_id)

    relay = RelayServer.objects.get(relay_id=relay_id)
    assert (
        got["RelayArn"] == f"arn:aws:ses:us-east-1:000000000000:mailmanager-smtp-relay/{relay_id}"
    )
    assert (got["RelayName"], got["ServerName"], got["ServerPort"]) == (
        "relay-a",
        "smtp.example.com",
        587,
    )
    assert got["Authentication"] == {"NoAuthentication": {}}
    assert got["CreatedTimestamp"].timestamp() == pytest.approx(
        relay.created_at.timestamp(), abs=0.001
    )
    assert got["ResponseMetadata"]["RequestId"]
    assert (relay.source_ip, relay.source_hostname, relay.max_concurrent_connections) == (
        "127.0.0.1",
        "localhost",
        0,
    )


def test_update_is_partial_and_delete_removes(mm):
    relay_id = create(mm)
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:smtp-AbCdEf"

    mm.update_relay(RelayId=relay_id, ServerPort=2525, Authentication={"SecretArn": secret})
    got = mm.get_relay(RelayId=relay_id)
    mm.delete_relay(RelayId=relay_id)

    assert (got["ServerName"], got["ServerPort"], got["Authentication"]) == (
        "smtp.example.com",
        2525,
        {"SecretArn": secret},
    )
    assert not RelayServer.objects.exists()


def test_unknown_relays_are_resource_not_found(mm):
    for call in (mm.get_relay, mm.delete_relay, mm.update_relay):
        with pytest.raises(mm.exceptions.ResourceNotFoundException):
            call(RelayId="rl-nothere")


def test_a_taken_name_is_a_conflict_across_types_and_case(mm):
    RelayServerFactory(name="Relay-A")

    with pytest.raises(mm.exceptions.ConflictException, match="already used"):
        create(mm, "relay-a")


def test_deleting_a_referenced_relay_is_a_conflict_naming_the_referrer(mm):
    relay_id = create(mm)
    RelayServerFactory(name="referrer", redirect=RelayServer.objects.get(relay_id=relay_id))

    with pytest.raises(mm.exceptions.ConflictException, match="referrer"):
        mm.delete_relay(RelayId=relay_id)


@pytest.mark.parametrize(
    "params",
    [
        {"RelayName": "has space"},
        {"RelayName": "x" * 101},
        {"RelayName": "123"},  # Mail Manager allows it; GreenArrow names may not be integers
        {"ServerName": "smtp_example.com"},
        {"ServerName": "-smtp.example.com"},  # GreenArrow: must start with a letter or digit
        {"ServerPort": 0},
        {"ServerPort": 65536},
        {"Authentication": {"SecretArn": "arn:aws:s3:::bucket"}},
    ],
)
def test_every_constraint_is_enforced_by_the_server(live_server, capsys, params):
    UserFactory(username="admin", is_superuser=True)
    unchecked = client_for(live_server, "admin", capsys, parameter_validation=False)

    with pytest.raises(unchecked.exceptions.ValidationException):
        create(unchecked, params.pop("RelayName", "relay-a"), **params)
    assert not RelayServer.objects.exists()


def test_page_size_bounds(mm):
    for size in (0, 51):
        with pytest.raises(mm.exceptions.ValidationException):
            mm.list_relays(PageSize=size)
    with pytest.raises(mm.exceptions.ValidationException):
        mm.list_relays(NextToken="forged")


def test_the_paginator_walks_every_relay_exactly_once(mm):
    made = [RelayServerFactory(name=f"r-{n}").relay_id for n in range(120)]

    pages = list(mm.get_paginator("list_relays").paginate(PaginationConfig={"PageSize": 50}))

    assert [len(p["Relays"]) for p in pages] == [50, 50, 20]
    assert [r["RelayId"] for p in pages for r in p["Relays"]] == made
    assert "NextToken" not in pages[-1]


def test_a_user_without_the_permission_is_access_denied(live_server, capsys):
    UserFactory(username="viewer", perms=["view_relayserver"])
    viewer = client_for(live_server, "viewer", capsys)

    assert viewer.list_relays()["Relays"] == []
    with pytest.raises(viewer.exceptions.AccessDeniedException):
        create(viewer)


def test_an_unknown_access_key_is_unrecognized(live_server):
    stranger = boto3.client(
        "mailmanager",
        endpoint_url=live_server.url,
        region_name="us-east-1",
        aws_access_key_id="AKIAUNKNOWNUNKNOWN00",
        aws_secret_access_key="x" * 40,
        config=Config(retries={"max_attempts": 1}),
    )

    with pytest.raises(ClientError) as caught:
        stranger.list_relays()
    assert caught.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_created_by_boto3_then_read_changed_and_deleted_through_greenarrow(mm):
    relay_id = create(mm, "cross-1")
    pk = RelayServer.objects.get(relay_id=relay_id).pk
    ga = GreenArrowClient("admin")

    got = ga.get(f"/relay_servers/{pk}").json()["data"]["relay_server"]
    changed = ga.put(f"/relay_servers/{pk}", {"relay_server": {"destination": {"port": 26}}})
    assert mm.get_relay(RelayId=relay_id)["ServerPort"] == 26
    deleted = ga.delete(f"/relay_servers/{pk}")

    assert got["name"] == "cross-1" and got["destination"]["hostname"] == "smtp.example.com"
    assert changed.status_code == 200 and deleted.status_code == 200
    with pytest.raises(mm.exceptions.ResourceNotFoundException):
        mm.get_relay(RelayId=relay_id)


def test_greenarrow_credentials_show_as_this_servers_own_secret_arn_and_survive_a_write_back(mm):
    relay = RelayServerFactory(name="with-auth", with_auth=True)

    auth = mm.get_relay(RelayId=relay.relay_id)["Authentication"]
    mm.update_relay(RelayId=relay.relay_id, ServerPort=26, Authentication=auth)

    assert auth == {
        "SecretArn": f"arn:aws:secretsmanager:us-east-1:000000000000:secret:relayapi/{relay.relay_id}"
    }
    relay.refresh_from_db()
    assert (relay.destination_username, relay.destination_password, relay.destination_port) == (
        "myusername",
        "mysecret",
        26,
    )
    mm.update_relay(RelayId=relay.relay_id, Authentication={"NoAuthentication": {}})
    relay.refresh_from_db()
    assert (relay.destination_username, relay.destination_password) == (None, None)


@pytest.mark.parametrize("target", ["MailManagerSvc.CreateIngressPoint", "OtherSvc.GetRelay", None])
def test_an_unknown_target_is_unknown_operation(target):
    from django.test import Client

    headers = {"HTTP_X_AMZ_TARGET": target} if target else {}
    response = Client().post("/", "{}", content_type="application/x-amz-json-1.0", **headers)

    assert response.status_code == 400
    assert (
        json.loads(response.content)["__type"]
        == "com.amazonaws.mailmanager#UnknownOperationException"
    )
    assert response["Content-Type"] == "application/x-amz-json-1.0"


def test_renaming_to_a_taken_name_is_a_conflict(mm):
    create(mm, "first")
    second = create(mm, "second")

    with pytest.raises(mm.exceptions.ConflictException):
        mm.update_relay(RelayId=second, RelayName="FIRST")
    assert mm.get_relay(RelayId=second)["RelayName"] == "second"


def test_an_authentication_union_with_two_members_is_refused(live_server, capsys):
    UserFactory(username="admin", is_superuser=True)
    unchecked = client_for(live_server, "admin", capsys, parameter_validation=False)
    both = {
        "NoAuthentication": {},
        "SecretArn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x",
    }

    with pytest.raises(unchecked.exceptions.ValidationException, match="exactly one member"):
        create(unchecked, Authentication=both)


def test_a_signed_body_that_is_not_json_is_a_serialization_error(db, capsys):
    from django.core.management import call_command
    from django.test import Client

    from tests.test_mailmanager_sigv4 import signed

    UserFactory(username="admin", is_superuser=True)
    call_command("create_access_key", "admin")
    key = json.loads(capsys.readouterr().out)
    request, body = signed(
        key["AccessKeyId"], key["SecretAccessKey"], host="testserver", body=b"{not json"
    )
    headers = {k: v for k, v in request.META.items() if k.startswith("HTTP_")}

    response = Client().post("/", body, content_type="application/x-amz-json-1.0", **headers)

    assert response.status_code == 400, response.content
    assert (
        json.loads(response.content)["__type"] == "com.amazonaws.mailmanager#SerializationException"
    )


def test_greenarrow_credentials_replace_an_external_secret(mm):
    secret = "arn:aws:secretsmanager:us-east-1:123456789012:secret:smtp-AbCdEf"
    relay_id = create(mm, Authentication={"SecretArn": secret})
    relay = RelayServer.objects.get(relay_id=relay_id)
    ga = GreenArrowClient("admin")

    response = ga.put(
        f"/relay_servers/{relay.pk}",
        {"relay_server": {"destination": {"username": "u", "password": "p"}}},
    )

    assert response.status_code == 200
    relay.refresh_from_db()
    assert (relay.secret_arn, relay.destination_username) == (None, "u")
    own = f"arn:aws:secretsmanager:us-east-1:000000000000:secret:relayapi/{relay_id}"
    assert mm.get_relay(RelayId=relay_id)["Authentication"] == {"SecretArn": own}


def test_created_through_greenarrow_then_read_changed_and_deleted_by_boto3(mm):
    ga = GreenArrowClient("admin")
    created = ga.post("/relay_servers", relay_payload(name="from-ga")).json()["data"][
        "relay_server"
    ]
    relay_id = RelayServer.objects.get(pk=created["id"]).relay_id

    listed = [r["RelayName"] for r in mm.list_relays()["Relays"]]
    mm.update_relay(RelayId=relay_id, RelayName="renamed-by-boto3", ServerPort=2525)
    after = ga.get(f"/relay_servers/{created['id']}").json()["data"]["relay_server"]
    mm.delete_relay(RelayId=relay_id)

    assert listed == ["from-ga"]
    assert (after["name"], after["destination"]["port"], after["destination"]["username"]) == (
        "renamed-by-boto3",
        2525,
        "myusername",
    )
    assert ga.get(f"/relay_servers/{created['id']}").status_code == 404


def test_list_relays_pages_by_20_by_default(mm):
    for n in range(25):
        RelayServerFactory(name=f"r-{n}")

    first = mm.list_relays()
    second = mm.list_relays(NextToken=first["NextToken"])

    assert (len(first["Relays"]), len(second["Relays"])) == (20, 5)
    assert "NextToken" not in second
    assert set(first["Relays"][0]) == {"RelayId", "RelayName", "LastModifiedTimestamp"}
