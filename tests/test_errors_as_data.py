"""The core reports each problem as data (the field in the domain's terms, what is wrong), and
each door says it in its own words: GreenArrow's attribute paths (unchanged, byte for byte),
Mail Manager's member names, the admin's form fields."""

import json

import pytest

from relays import services
from relays.errors import ValidationFailed
from relays.models import RelayServer
from tests import signed
from tests.conftest import error, relay_payload
from tests.factories import RelayServerFactory, UserFactory
from tests.test_admin_relay_servers import ADD, relay_form

ENDS = "must start and end with a letter or number"


def test_the_core_names_the_model_field_and_greenarrow_says_its_path(db):
    with pytest.raises(ValidationFailed) as refused:
        services.create_virtual_mta(
            RelayServer,
            {
                "name": "r",
                "source_ip": "127.0.0.2",
                "source_hostname": "-helo.example",
                "destination_hostname": "smtp.example.com",
                "destination_port": 25,
                "max_concurrent_connections": 0,
                "max_messages_per_hour": 0,
            },
        )

    [problem] = refused.value.problems
    assert (problem.field, problem.text) == ("source_hostname", ENDS)
    assert refused.value.messages == [f"source_ip.hostname {ENDS}"]


def test_greenarrow_answers_exactly_as_before(admin):
    payload = relay_payload()
    payload["relay_server"]["destination"]["hostname"] = "-smtp.example.com"

    response = admin.post("/relay_servers", payload)

    assert response.json() == error("validation_failed", f"destination.hostname {ENDS}")


def test_mail_manager_says_server_name_not_a_greenarrow_path(db):
    UserFactory(username="mm", is_superuser=True)
    key = signed.new_key("mm")

    response = signed.call(
        key,
        "CreateRelay",
        {
            "RelayName": "r1",
            "ServerName": "-smtp.example.com",
            "ServerPort": 587,
            "Authentication": {"NoAuthentication": {}},
        },
    )

    body = json.loads(response.content)
    assert response.status_code == 400
    assert body == {
        "__type": "com.amazonaws.mailmanager#ValidationException",
        "Message": f"ServerName {ENDS}",
    }


def test_mail_manager_names_relay_name_in_a_conflict(db):
    RelayServerFactory(name="taken")
    UserFactory(username="mm", is_superuser=True)
    key = signed.new_key("mm")

    response = signed.call(
        key,
        "CreateRelay",
        {
            "RelayName": "TAKEN",
            "ServerName": "smtp.example.com",
            "ServerPort": 587,
            "Authentication": {"NoAuthentication": {}},
        },
    )

    assert json.loads(response.content)["Message"].startswith("RelayName 'TAKEN' is already used")


def test_the_admin_says_it_at_the_field_in_its_own_words(browser):
    page = browser.post(ADD, relay_form(source_hostname="-helo.example"))

    form = page.context["adminform"].form
    assert form.errors["source_hostname"] == [ENDS]  # beside "HELO hostname", no API path
    assert "source_ip.hostname" not in page.content.decode()


def test_the_admin_shows_every_problem_of_a_form_in_one_round_trip(browser):
    """A field's own check (the port) and the service's (the name taken, the HELO name's ends)
    in the same answer, not the service's only once the field is fixed."""
    RelayServerFactory(name="taken")

    page = browser.post(
        ADD, relay_form(name="TAKEN", destination_port="0", source_hostname="helo.example-")
    )

    errors = page.context["adminform"].form.errors
    assert errors["destination_port"] == ["must be an integer from 1 to 65535"]
    assert errors["name"][0].startswith("'TAKEN' is already used by relay_server ")
    assert errors["source_hostname"] == [ENDS]
    assert not RelayServer.objects.filter(name="TAKEN").exists()
