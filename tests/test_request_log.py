"""One JSON log line per request, with a request id that the response carries too.

The lines are read as written: the root logger's JSON handler writes into a buffer here.
"""

import io
import json
import logging
import re

import pytest
from django.test import Client

from relayapi.logging import JsonFormatter
from tests.conftest import GA, GreenArrowClient, create

HEX_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def log_output():
    """() -> everything written to the log since the test began, as text."""
    handler = next(
        h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter)
    )
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    yield buffer.getvalue
    handler.setStream(previous)


def lines_of(text):
    """Each line parsed; every line break in the text must end a line of JSON."""
    assert text.endswith("\n")
    assert text.splitlines() == text.split("\n")[:-1]  # no \r, \v, \u2028, ... inside a line
    return [json.loads(line) for line in text.splitlines()]


def test_a_request_leaves_one_line_with_its_id_and_no_query_string(log_output):
    response = Client().get("/healthz", {"token": "secret-value"})

    [line] = lines_of(log_output())
    assert HEX_ID.fullmatch(response["X-Request-Id"])
    assert line.pop("timestamp")
    assert line.pop("duration_ms") >= 0
    assert line == {
        "event": "request",
        "level": "info",
        "logger": "relayapi.request",
        "method": "GET",
        "path": "/healthz",
        "status": 200,
        "user": None,
        "request_id": response["X-Request-Id"],
        "remote_addr": "127.0.0.1",
    }
    assert "secret-value" not in log_output()


def test_the_line_names_the_authenticated_user(admin, log_output):
    response = admin.get("/relay_servers")

    [line] = lines_of(log_output())
    assert (line["path"], line["status"], line["user"]) == (f"{GA}/relay_servers", 200, "admin")
    assert line["request_id"] == response["X-Request-Id"]


def test_newlines_in_basic_username_and_path_stay_inside_one_line_each(anonymous, log_output):
    forged = '\n{"event": "request", "user": "root"}\n'
    intruder = GreenArrowClient(f"intruder{forged}", password=f"password{forged}")

    intruder.get("/relay_servers")  # wrong credentials: 401
    anonymous.client.get(f"{GA}/relay_servers%0A%7B%22user%22%3A%20%22root%22%7D")  # no such path
    intruder.client.get(f"{GA}/relay_servers%0Aforged")  # both

    text = log_output()
    lines = lines_of(text)
    assert [(line["status"], line["user"]) for line in lines] == [
        (401, None),
        (404, None),
        (404, None),
    ]
    assert lines[1]["path"] == f'{GA}/relay_servers\n{{"user": "root"}}'
    assert lines[2]["path"] == f"{GA}/relay_servers\nforged"
    # Credentials never reach the log, not even the name tried.
    assert "intruder" not in text
    assert "password" not in text


def test_a_client_cannot_choose_its_request_id_by_default(log_output):
    response = Client().get("/healthz", HTTP_X_REQUEST_ID="chosen-by-client")

    assert HEX_ID.fullmatch(response["X-Request-Id"])
    assert lines_of(log_output())[0]["request_id"] == response["X-Request-Id"]


def test_a_trusted_proxy_id_is_kept(settings, log_output):
    settings.RELAYAPI_TRUST_REQUEST_ID = True
    settings.RELAYAPI_TRUSTED_PROXIES = ["127.0.0.1"]  # the test client's address

    response = Client().get("/healthz", HTTP_X_REQUEST_ID="web-1:7f3a.42_b-9")

    assert response["X-Request-Id"] == "web-1:7f3a.42_b-9"
    assert lines_of(log_output())[0]["request_id"] == "web-1:7f3a.42_b-9"


@pytest.mark.parametrize(
    "incoming", ["", "has space", "line\nbreak", "caf\u00e9", "x" * 129, "a;b", "a/b"]
)
def test_a_trusted_proxy_id_of_another_shape_is_replaced(settings, incoming):
    settings.RELAYAPI_TRUST_REQUEST_ID = True
    settings.RELAYAPI_TRUSTED_PROXIES = ["127.0.0.1"]

    response = Client().get("/healthz", HTTP_X_REQUEST_ID=incoming)

    assert HEX_ID.fullmatch(response["X-Request-Id"])


def test_only_the_trusted_proxy_chooses_the_id(settings):
    """The finding: any local process that reached gunicorn over TCP chose its own request id.
    With the Unix socket as the proxy, an id is kept only from the socket."""
    settings.RELAYAPI_TRUST_REQUEST_ID = True
    settings.RELAYAPI_TRUSTED_PROXIES = ["unix"]

    over_tcp = Client().get("/healthz", REMOTE_ADDR="127.0.0.1", HTTP_X_REQUEST_ID="forged-1")
    over_the_socket = Client().get("/healthz", REMOTE_ADDR="", HTTP_X_REQUEST_ID="nginx-1")

    assert HEX_ID.fullmatch(over_tcp["X-Request-Id"])
    assert over_the_socket["X-Request-Id"] == "nginx-1"


def test_error_responses_carry_the_id_too(anonymous):
    response = anonymous.get("/relay_servers")

    assert response.status_code == 401
    assert HEX_ID.fullmatch(response["X-Request-Id"])


@pytest.mark.django_db(transaction=True)
def test_mail_manager_answers_with_the_same_id_and_logs_the_key_user(mm, log_output):
    relay_id = create(mm)

    got = mm.get_relay(RelayId=relay_id)["ResponseMetadata"]

    line = lines_of(log_output())[-1]
    assert got["RequestId"] == got["HTTPHeaders"]["x-request-id"] == line["request_id"]
    assert (line["method"], line["path"], line["status"], line["user"]) == (
        "POST",
        "/",
        200,
        "admin",
    )
