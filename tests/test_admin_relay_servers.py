"""Relay servers and IP addresses in the admin are written through the API's services: the same
rules, quota, loop check and messages, each shown at the field it concerns; a refused delete
names every referrer with a link; the list and the change form speak the domain's words."""

import pytest

from relays.models import AuditEntry, IpAddress, RelayServer
from tests import signed
from tests.conftest import relay_payload
from tests.factories import IpAddressFactory, RelayServerFactory, RoutingRuleFactory

ADD = "/admin/relays/relayserver/add/"
IP_ADD = "/admin/relays/ipaddress/add/"
GOOD_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:smtp/relay-a"


def change_page(vmta):
    kind = "relayserver" if isinstance(vmta, RelayServer) else "ipaddress"
    return f"/admin/relays/{kind}/{vmta.pk}/change/"


def relay_form(**changes):
    return {
        "name": "relay-new",
        "source_ip": "127.0.0.2",
        "source_hostname": "outgoing.example.com",
        "destination_hostname": "smtp.example.com",
        "destination_port": "25",
        "destination_username": "",
        "destination_password": "",
        "max_concurrent_connections": "0",
        "max_messages_per_hour": "0",
        "redirect": "",
        "secret_arn": "",
        **changes,
    }


def ip_form(**changes):
    return {
        "name": "ip-new",
        "ip": "10.0.0.9",
        "hostname": "mta9.example.com",
        "max_concurrent_connections": "0",
        "max_messages_per_hour": "0",
        "redirect": "",
        **changes,
    }


def errors(page):
    """The form's errors as {field or None: [message]}: the page came back with them."""
    assert page.status_code == 200, page.status_code
    form = page.context["adminform"].form
    return {
        (None if field == "__all__" else field): list(messages)
        for field, messages in form.errors.items()
    }


def audited(record_type):
    return list(
        AuditEntry.objects.filter(record_type=record_type)
        .order_by("id")
        .values_list("facade", "action", "record_name")
    )


# --- item 1: the API's rules and messages, at the field ----------------------------------------


def test_a_refused_change_writes_nothing_and_the_fixed_one_is_audited_once(browser):
    relay = RelayServerFactory(name="relay-a")

    refused = browser.post(change_page(relay), relay_form(name="relay-a", destination_port="-5"))
    saved = browser.post(change_page(relay), relay_form(name="relay-a", destination_port="2525"))

    assert errors(refused) == {"destination_port": ["must be an integer from 1 to 65535"]}
    assert saved.status_code == 302
    assert RelayServer.objects.get(pk=relay.pk).destination_port == 2525
    assert audited("relay_server") == [("admin", "update", "relay-a")]


@pytest.mark.parametrize("port", ["-5", "0", "65536", "x"])
def test_a_bad_port_gets_the_api_message_at_its_field(browser, port):
    page = browser.post(ADD, relay_form(destination_port=port))

    assert errors(page) == {"destination_port": ["must be an integer from 1 to 65535"]}
    assert not RelayServer.objects.exists()


def test_a_negative_throttle_limit_gets_the_api_message_at_its_field(browser):
    page = browser.post(ADD, relay_form(max_messages_per_hour="-1"))

    assert errors(page) == {"max_messages_per_hour": ["must be an integer from 0 to 2147483647"]}


def test_a_taken_name_is_refused_at_the_name_naming_the_holder(browser):
    ip = IpAddressFactory(name="Shared-Name")

    page = browser.post(ADD, relay_form(name="shared-name"))

    assert errors(page) == {
        "name": [f"'shared-name' is already used by ip_address {ip.pk} (Shared-Name)"]
    }
    assert not RelayServer.objects.exists()


def test_the_relay_quota_is_kept_and_said_above_the_form(browser, settings):
    settings.RELAYAPI_MAX_RELAYS = 1

    added = browser.post(ADD, relay_form(destination_port="587"))
    refused = browser.post(ADD, relay_form(name="one-too-many"))

    assert added.status_code == 302
    assert RelayServer.objects.get().destination_port == 587
    assert errors(refused) == {None: ["the maximum number of relay servers (1) is reached"]}
    assert audited("relay_server") == [("admin", "create", "relay-new")]


def test_a_secret_arn_must_match_the_mail_manager_pattern(browser):
    page = browser.post(ADD, relay_form(secret_arn="not-an-arn"))

    [message] = errors(page)["secret_arn"]
    assert message.startswith("must be an AWS Secrets Manager secret ARN: arn:aws:secretsmanager:")
    assert not RelayServer.objects.exists()
    assert browser.post(ADD, relay_form(secret_arn=GOOD_ARN)).status_code == 302
    assert RelayServer.objects.get(name="relay-new").secret_arn == GOOD_ARN


def test_credentials_and_a_secret_arn_together_get_a_clear_message(browser):
    page = browser.post(
        ADD,
        relay_form(destination_username="u", destination_password="p", secret_arn=GOOD_ARN),
    )

    assert errors(page) == {
        None: [
            "SMTP credentials come from one place: a stored username and password, or a "
            "Secret ARN, not both"
        ],
        # The page never sends a password back: it says so (tests/test_admin_typed_credentials).
        "destination_password": [
            "Type the password again: it is not sent back with a form that has errors."
        ],
    }
    assert b"one_credential_source" not in page.content
    assert not RelayServer.objects.exists()


def test_an_ip_address_gets_the_api_rules_and_messages_too(browser):
    RelayServerFactory(name="taken")

    page = browser.post(IP_ADD, ip_form(name="TAKEN", max_concurrent_connections="-3"))

    found = errors(page)
    assert found["max_concurrent_connections"] == ["must be an integer from 0 to 2147483647"]
    assert not IpAddress.objects.exists()
    page = browser.post(IP_ADD, ip_form(name="TAKEN"))
    assert errors(page)["name"][0].startswith("'TAKEN' is already used by relay_server ")


def test_an_ip_address_added_in_the_admin_is_deleted_only_once_unused(browser):
    assert browser.post(IP_ADD, ip_form()).status_code == 302
    ip = IpAddress.objects.get(name="ip-new")
    user = RelayServerFactory(name="user", redirect=ip)
    url = f"/admin/relays/ipaddress/{ip.pk}/delete/"
    link = f'<a href="{change_page(user)}">relay_server {user.pk} (user)</a>'

    refused = browser.post(url, {"post": "yes"})
    user.delete()
    deleted = browser.post(url, {"post": "yes"})

    assert link in refused.content.decode()
    assert deleted.status_code == 302
    assert not IpAddress.objects.exists()
    assert audited("ip_address") == [("admin", "create", "ip-new"), ("admin", "delete", "ip-new")]


# --- a refused delete names every referrer, linked ------------------------------------------


def test_a_refused_delete_names_each_referrer_as_the_api_does_with_links(browser):
    target = RelayServerFactory(name="postmark-01")
    redirected = RelayServerFactory(name="mailgun-01", redirect=target)
    rule = RoutingRuleFactory(name="rule-1", targets=[(target, 70)])
    url = f"/admin/relays/relayserver/{target.pk}/delete/"

    page = browser.get(url)

    html = page.content.decode()
    who = f"relay_server {target.pk} (postmark-01)"
    assert (
        f'{who} is used by <a href="{change_page(redirected)}">relay_server {redirected.pk} '
        "(mailgun-01)</a> as its redirect"
    ) in html
    assert (
        f'{who} is used by <a href="/admin/relays/routingrule/{rule.pk}/change/">routing_rule '
        f"{rule.pk} (rule-1)</a> as its default.deliver_through[0].virtual_mta"
    ) in html
    assert "Virtual mta:" not in html and "(70" not in html
    assert browser.post(url, {"post": "yes"}).status_code == 200
    assert RelayServer.objects.filter(pk=target.pk).exists()
    # Once nothing uses it, the delete goes through (audited once, by the service).
    redirected.delete()
    rule.delete()
    assert browser.post(url, {"post": "yes"}).status_code == 302
    assert not RelayServer.objects.filter(pk=target.pk).exists()
    assert audited("relay_server") == [("admin", "delete", "postmark-01")]


def test_the_default_virtual_mta_is_named_as_a_referrer(browser):
    ip = IpAddressFactory(name="the-default")
    browser.post("/admin/relays/defaultvirtualmta/1/change/", {"default": "the-default"})

    page = browser.get(f"/admin/relays/ipaddress/{ip.pk}/delete/")

    assert f"ip_address {ip.pk} (the-default) is the " in page.content.decode()
    assert b'<a href="/admin/relays/defaultvirtualmta/1/change/">default VirtualMTA</a>' in (
        page.content
    )


def test_a_bulk_delete_of_a_referenced_relay_is_refused(browser):
    target = RelayServerFactory(name="target")
    RelayServerFactory(name="user", redirect=target)

    page = browser.post(
        "/admin/relays/relayserver/",
        {"action": "delete_selected", "_selected_action": [target.pk], "post": "yes"},
    )

    assert b"is used by" in page.content
    assert RelayServer.objects.filter(pk=target.pk).exists()


# --- item 2: the relay list and change form -------------------------------------------------


def test_the_list_shows_the_relay_in_the_domain_s_words(browser):
    target = IpAddressFactory(name="ip-out")
    relay = RelayServerFactory(
        name="relay-a",
        destination_hostname="smtp.example.com",
        destination_port=587,
        source_ip="127.0.0.9",
        source_hostname="helo.example.com",
        max_concurrent_connections=0,
        max_messages_per_hour=100,
        redirect=target,
        with_auth=True,
    )

    html = browser.get("/admin/relays/relayserver/").content.decode()

    assert f'<a href="{change_page(relay)}">relay-a</a>' in html
    assert "smtp.example.com:587" in html
    assert "127.0.0.9 / helo.example.com" in html
    assert "stored credentials" in html
    assert '<td class="field-throttle_limits">100/h</td>' in html
    assert f'<a href="{change_page(target)}">ip-out</a> (IP address)' in html


def listed(browser, query):
    page = browser.get(f"/admin/relays/relayserver/?{query}")
    assert page.status_code == 200
    return sorted(r.name for r in page.context["cl"].result_list)


def test_the_list_filters_by_redirect_authentication_and_throttling(browser):
    target = RelayServerFactory(
        name="target", max_concurrent_connections=0, max_messages_per_hour=0
    )
    RelayServerFactory(name="redirected", redirect=target)
    RelayServerFactory(name="stored", with_auth=True)
    RelayServerFactory(name="secret", secret_arn=GOOD_ARN)

    assert listed(browser, "redirected=yes") == ["redirected"]
    assert listed(browser, "authentication=stored") == ["stored"]
    assert listed(browser, "authentication=secret") == ["secret"]
    assert listed(browser, "authentication=none") == ["redirected", "target"]
    assert listed(browser, "throttled=no") == ["target"]
    assert "target" not in listed(browser, "throttled=yes")


def test_the_list_filters_by_the_door_that_created_the_relay(browser, admin):
    assert browser.post(ADD, relay_form(name="from-admin")).status_code == 302
    admin.post("/relay_servers", relay_payload(name="from-greenarrow"))
    created = signed.call(
        signed.new_key("admin"),
        "CreateRelay",
        {
            "RelayName": "from-boto3",
            "ServerName": "smtp.example.com",
            "ServerPort": 587,
            "Authentication": {"NoAuthentication": {}},
        },
    )
    assert created.status_code == 200
    RelayServerFactory(name="from-nowhere")  # older than the audit log: no create entry

    assert listed(browser, "created_through=mailmanager") == ["from-boto3"]
    assert listed(browser, "created_through=greenarrow") == ["from-greenarrow"]
    assert listed(browser, "created_through=admin") == ["from-admin"]


def test_the_list_is_searched_by_source_ip_helo_and_relay_id(browser):
    a = RelayServerFactory(name="a", source_ip="127.0.0.7", source_hostname="helo-a.example")
    RelayServerFactory(name="b")

    assert listed(browser, "q=127.0.0.7") == ["a"]
    assert listed(browser, "q=helo-a") == ["a"]
    assert listed(browser, f"q={a.relay_id}") == ["a"]


def test_the_change_form_is_in_the_api_s_fieldsets_with_domain_labels(browser):
    relay = RelayServerFactory()

    page = browser.get(change_page(relay))

    names = [fieldset.name for fieldset in page.context["adminform"]]
    assert names == [
        None,
        "Source IP",
        "Destination",
        "Authentication",
        "Throttle limits",
        "Redirect",
        "Mail Manager",
        "References",
    ]
    form = page.context["adminform"].form
    assert form.fields["source_hostname"].label == "HELO hostname"
    assert form.fields["secret_arn"].label == "Secret ARN"
    assert all(field.help_text for field in form.fields.values())


# --- a concurrent write between the form's check and the write ---------------------------------


@pytest.fixture
def name_taken_after_the_check(monkeypatch):
    """The form's check (a dry run of the service) passes; then another door takes the name."""
    from relays import services
    from relays.errors import NameTaken, Problem

    real, calls = services.create_virtual_mta, []

    def create(model, data):
        calls.append(data["name"])
        if len(calls) == 1:
            return real(model, data)
        raise NameTaken(
            Problem("name", "'relay-new' is already used by relay_server 1 (RELAY-NEW)")
        )

    monkeypatch.setattr(services, "create_virtual_mta", create)
    return calls


def test_a_name_taken_between_check_and_write_shows_the_form_again_not_a_500(
    browser, name_taken_after_the_check
):
    page = browser.post(ADD, relay_form())

    assert page.status_code == 200
    assert errors(page)["name"] == ["'relay-new' is already used by relay_server 1 (RELAY-NEW)"]
    assert name_taken_after_the_check == ["relay-new"] * 3  # check, write, check again
    assert not RelayServer.objects.exists()


def test_a_referrer_added_between_check_and_delete_is_reported_not_a_500(browser, monkeypatch):
    from relays import services
    from relays.errors import InUse

    relay = RelayServerFactory(name="relay-a")

    def delete(model, pk):
        raise InUse(["relay_server relay-a is used by relay_server 9 (late) as its redirect"])

    monkeypatch.setattr(services, "delete_virtual_mta", delete)
    page = browser.post(
        f"/admin/relays/relayserver/{relay.pk}/delete/", {"post": "yes"}, follow=True
    )

    assert page.status_code == 200
    shown = [str(m) for m in page.context["messages"]]
    assert shown == [
        "Nothing was changed: relay_server relay-a is used by relay_server 9 (late) as its redirect"
    ]
    assert RelayServer.objects.filter(pk=relay.pk).exists()
