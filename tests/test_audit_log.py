"""Every change, through any door, leaves one audit entry in the same transaction: who, when, from
where, through which door, the request id, and the record before and after with secrets
redacted. A refused change leaves none."""

import json

import pytest
from django.core.management import call_command
from django.test import Client

from relays import audit, services
from relays.models import RelayServer
from tests.conftest import relay_payload, store_entries
from tests.factories import RelayServerFactory, UserFactory


def entries():
    return list(store_entries().order_by("id"))


def test_a_greenarrow_create_is_audited_with_who_where_and_the_request_id(admin):
    response = admin.post("/relay_servers", relay_payload(), REMOTE_ADDR="192.0.2.7")
    relay = RelayServer.objects.get()

    [entry] = entries()
    assert (entry.actor, entry.facade, entry.address, entry.action) == (
        "admin",
        "greenarrow",
        "192.0.2.7",
        "create",
    )
    assert (entry.record_type, entry.record_id, entry.record_name) == (
        "relay_server",
        relay.id,
        "new-relay-server",
    )
    assert entry.request_id == response["X-Request-Id"]
    assert entry.before is None
    assert entry.after["destination_port"] == 25
    assert entry.after["destination_password"] == "(redacted)"
    assert entry.after["destination_username"] == "(redacted)"


def test_an_update_records_before_and_after_and_says_a_secret_changed(admin):
    relay = RelayServerFactory(name="r", with_auth=True)

    admin.put(
        f"/relay_servers/{relay.id}",
        {"relay_server": {"destination": {"port": 2525, "password": "new-secret"}}},
    )

    [entry] = entries()
    assert entry.action == "update"
    assert (entry.before["destination_port"], entry.after["destination_port"]) == (25, 2525)
    assert entry.before["destination_password"] == "(redacted)"
    assert entry.after["destination_password"] == "(redacted, changed)"
    assert entry.after["destination_username"] == "(redacted)"


def test_no_entry_anywhere_holds_a_secret(admin):
    admin.post("/relay_servers", relay_payload())
    relay = RelayServer.objects.get()
    admin.put(
        f"/relay_servers/{relay.id}",
        {"relay_server": {"destination": {"username": "other-user", "password": "other-secret"}}},
    )
    admin.delete(f"/relay_servers/{relay.id}")

    stored = json.dumps([[e.before, e.after] for e in entries()])
    assert len(entries()) == 3
    for secret in ("mysecret", "myusername", "other-user", "other-secret"):
        assert secret not in stored


def test_a_delete_records_the_record_as_it_was(admin):
    relay = RelayServerFactory(name="gone")

    admin.delete(f"/relay_servers/{relay.id}")

    [entry] = entries()
    assert (entry.action, entry.record_id, entry.record_name) == ("delete", relay.id, "gone")
    assert entry.before["name"] == "gone" and entry.after is None


def test_a_refused_change_leaves_no_entry(admin):
    relay = RelayServerFactory(name="r")
    RelayServerFactory(name="taken")

    admin.put(f"/relay_servers/{relay.id}", {"relay_server": {"name": "TAKEN"}})
    admin.post("/relay_servers", relay_payload(name="taken"))

    assert entries() == []


def test_an_update_that_changes_nothing_leaves_no_entry(admin):
    relay = RelayServerFactory(name="r")
    got = admin.get(f"/relay_servers/{relay.id}").json()["data"]

    admin.put(f"/relay_servers/{relay.id}", got)

    assert entries() == []


def test_a_routing_rule_entry_carries_its_routes(admin):
    target = RelayServerFactory(name="t")
    body = {
        "routing_rule": {
            "name": "rr",
            "default": {
                "randomization_type": "random",
                "deliver_through": [{"virtual_mta": {"id": target.id}, "portion_of_mail": 3}],
            },
            "domain_overrides": [
                {
                    "domains": ["example.com"],
                    "randomization_type": "random",
                    "deliver_through": [{"virtual_mta": {"id": target.id}, "portion_of_mail": 1}],
                }
            ],
        }
    }

    admin.post("/routing_rules", body)

    [entry] = entries()
    assert entry.after["default_deliver_through"] == [[target.id, 3.0]]
    assert entry.after["domain_overrides"][0]["domains"] == ["example.com"]


def test_the_default_virtual_mta_is_audited(admin):
    relay = RelayServerFactory(name="r")

    admin.put("/virtual_mtas/default", {"virtual_mta": {"id": relay.id}})

    [entry] = entries()
    assert (entry.record_type, entry.before, entry.after) == (
        "default_virtual_mta",
        {"virtual_mta_id": None},
        {"virtual_mta_id": relay.id},
    )


def test_mail_manager_changes_are_audited_as_such(mm):
    relay_id = mm.create_relay(
        RelayName="mm-1",
        ServerName="smtp.example.com",
        ServerPort=587,
        Authentication={"NoAuthentication": {}},
        Tags=[{"Key": "team", "Value": "mail"}],
    )["RelayId"]
    arn = mm.get_relay(RelayId=relay_id)["RelayArn"]
    mm.untag_resource(ResourceArn=arn, TagKeys=["team"])
    mm.delete_relay(RelayId=relay_id)

    found = [
        (e.facade, e.actor, e.action, e.before, e.after)
        for e in entries()
        if e.record_type == "relay_server"  # the fixture's access key is audited too
    ]
    assert [f[:3] for f in found] == [("mailmanager", "admin", "create")] + [
        ("mailmanager", "admin", action) for action in ("update", "update", "delete")
    ]
    assert found[1][3:] == ({"tags": {}}, {"tags": {"team": "mail"}})
    assert found[2][3:] == ({"tags": {"team": "mail"}}, {"tags": {}})


def test_admin_changes_are_audited_and_shown_in_history_with_api_changes(admin, browser):
    relay = RelayServerFactory(name="r")
    admin.put(f"/relay_servers/{relay.id}", {"relay_server": {"destination": {"port": 2525}}})
    form = {
        "name": "r",
        "source_ip": relay.source_ip,
        "source_hostname": relay.source_hostname,
        "destination_hostname": relay.destination_hostname,
        "destination_port": 2526,
        "destination_username": "",
        "destination_password": "",
        "max_concurrent_connections": 0,
        "max_messages_per_hour": 0,
    }
    browser.post(f"/admin/relays/relayserver/{relay.id}/change/", form)

    history = browser.get(f"/admin/relays/relayserver/{relay.id}/history/").content.decode()

    assert [(e.facade, e.actor) for e in entries()] == [("greenarrow", "admin"), ("admin", "admin")]
    assert "greenarrow" in history and "2525" in history and "2526" in history


def test_writes_outside_a_request_are_audited_as_the_command_line(db):
    services.create_virtual_mta(
        RelayServer,
        {
            "name": "cli",
            "source_ip": "127.0.0.2",
            "source_hostname": "h.example.com",
            "destination_hostname": "d.example.com",
            "destination_port": 25,
            "max_concurrent_connections": 0,
            "max_messages_per_hour": 0,
        },
    )

    [entry] = entries()
    assert entry.facade == "command" and entry.actor  # the operating-system user


def test_the_audit_log_command_prints_text_and_json(admin, capsys):
    admin.post("/relay_servers", relay_payload())

    call_command("audit_log", "--since", "2000-01-01")
    text = capsys.readouterr().out
    call_command("audit_log", "--json")
    [line] = [
        line
        for line in capsys.readouterr().out.splitlines()
        if json.loads(line)["record_type"] == "relay_server"
    ]
    call_command("audit_log", "--since", "2999-01-01")

    assert "admin via greenarrow" in text and "create relay_server" in text
    assert json.loads(line)["record_name"] == "new-relay-server"
    assert capsys.readouterr().out == ""


def test_the_audit_log_command_refuses_a_bad_date(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--since must be an ISO date"):
        call_command("audit_log", "--since", "yesterday")


def test_audit_entries_are_read_only_in_the_admin(admin, db):
    UserFactory(username="root", is_superuser=True)
    browser = Client()
    browser.login(username="root", password="pw")
    admin.post("/relay_servers", relay_payload())
    entry = store_entries().get()

    assert browser.get("/admin/relays/auditentry/").status_code == 200
    assert browser.get("/admin/relays/auditentry/add/").status_code == 403
    assert (
        browser.post(f"/admin/relays/auditentry/{entry.id}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert store_entries().count() == 1


def test_acting_resets_after_the_block(db):
    with audit.acting("greenarrow"):
        pass

    RelayServerFactory()  # factories bypass the services: no entry
    services.delete_virtual_mta(RelayServer, RelayServer.objects.get().pk)

    assert entries()[0].facade == "command"


def test_behind_a_trusted_proxy_the_client_address_is_recorded(admin, settings):
    settings.RELAYAPI_TRUSTED_PROXIES = ["127.0.0.1"]

    admin.post(
        "/relay_servers",
        relay_payload(),
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR="198.51.100.9",
    )

    assert store_entries().get().address == "198.51.100.9"


def test_access_keys_made_and_revoked_on_the_command_line_are_audited(db, capsys):
    UserFactory(username="boto")
    call_command("create_access_key", "boto")
    key = json.loads(capsys.readouterr().out)
    call_command("revoke_access_key", key["AccessKeyId"])

    created, revoked = entries()
    assert (created.facade, created.action, created.record_name) == (
        "command",
        "create",
        key["AccessKeyId"],
    )
    assert created.after["secret"] == "(redacted)"
    assert key["SecretAccessKey"] not in json.dumps([created.after, revoked.before, revoked.after])
    assert (revoked.before["is_active"], revoked.after["is_active"]) == (True, False)
