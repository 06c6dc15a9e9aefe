"""One answer to every refused login: an account that may not log in (not staff, or inactive)
with the right password is told exactly what a wrong password is told, at every door, so the
answer never confirms a password."""

import json

import pytest
from django.test import Client

from tests import signed
from tests.conftest import GreenArrowClient, error
from tests.factories import UserFactory

ACCOUNTS = {
    "wrong password": ("sam", "wrong"),
    "unknown user": ("nobody", "pw"),
    "non-staff, right password": ("outsider", "pw"),
    "inactive, right password": ("retired", "pw"),
}


ADMIN_REFUSED = (
    "Please enter the correct username and password for a staff account. "
    "Note that both fields may be case-sensitive."
)


@pytest.fixture
def people(db):
    UserFactory(username="sam", is_superuser=True)
    UserFactory(username="outsider", is_superuser=True, is_staff=False)
    UserFactory(username="retired", is_superuser=True, is_active=False)


def greenarrow_answer(username, password):
    response = GreenArrowClient(username, password).get("/relay_servers")
    return response.status_code, response["WWW-Authenticate"], response.json()


def admin_answer(username, password):
    response = Client().post(
        "/admin/login/", {"username": username, "password": password, "next": "/admin/"}
    )
    return response.status_code, response.context["form"].errors.as_data()["__all__"][0].messages


def test_greenarrow_answers_every_refused_login_alike(people):
    answers = {case: greenarrow_answer(*account) for case, account in ACCOUNTS.items()}

    assert answers == dict.fromkeys(
        ACCOUNTS,
        (401, 'Basic realm="RelayAPI"', error("unauthorized", "Invalid username/password.")),
    )


def test_the_admin_answers_every_refused_login_alike(people):
    answers = {case: admin_answer(*account) for case, account in ACCOUNTS.items()}

    assert answers == dict.fromkeys(ACCOUNTS, (200, [ADMIN_REFUSED]))


def test_mail_manager_answers_a_right_and_a_wrong_secret_of_a_non_staff_key_alike(people):
    key = signed.new_key("outsider")

    right = signed.call(key, "ListRelays")
    wrong = signed.call({**key, "SecretAccessKey": "x" * 40}, "ListRelays")

    assert (right.status_code, right.content) == (wrong.status_code, wrong.content)
    assert json.loads(right.content)["__type"].endswith("#UnrecognizedClientException")
