"""schemathesis against the GreenArrow API, served for real on 127.0.0.1 (pytest-django's live
server), as a superuser over HTTP Basic.

- `test_every_operation`: each operation with schemathesis' phases: the schema's examples (the
  vendor's bodies), the coverage phase (each constraint's edges and the values just past them,
  unsupported methods, missing and malformed parts) and random fuzzing, valid and invalid data.
- `test_stateful`: scenarios that follow the schema's OpenAPI links: from a created or updated
  record to reading, changing and deleting it, to new records that refer to it (a redirect, a
  routing-rule target, an override target, the default VirtualMTA) and so to `used_by` lists
  with something in them and deletes refused while a reference stands.

Every answer goes through `not_a_server_error`, `status_code_conformance`,
`content_type_conformance` and `response_schema_conformance`: no 5xx, and every status, content
type and body is one the schema documents for that operation.

Budget: `RELAYAPI_FUZZ_EXAMPLES` examples per operation, and twice as many stateful scenarios
(default 50: about a minute per database on two cores, derandomized so CI is reproducible).
`make fuzz` sets a larger one, and any value set makes the run random, so each run explores
elsewhere. `RELAYAPI_FUZZ_STEPS` is the most steps in one scenario (default 12);
`RELAYAPI_FUZZ_VERBOSE=1` reports the answers per operation and status.
"""

import json
import os
import socket
from collections import Counter

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from hypothesis.errors import Flaky
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.jsonschema import patterns
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.factories import UserFactory

# schemathesis 4.32 rewrites a pattern's quantifiers to fit a length (`minLength`, `maxLength`)
# and writes the result back with a literal `]` or `}` unescaped, which JSON Schema's regular
# expressions (ECMA 262, Unicode mode) do not allow: it then gives up on the operation with
# "unsupported regular expression" (the domain pattern's `\[\*\.\]` prefix). Its serializer
# escapes the characters in this set; the schema is fine as it is.
patterns._REGEX_META |= set("]}")

EXAMPLES = int(os.environ.get("RELAYAPI_FUZZ_EXAMPLES") or 50)
RANDOM = bool(os.environ.get("RELAYAPI_FUZZ_EXAMPLES"))
SCENARIOS = 2 * EXAMPLES
STEPS = int(os.environ.get("RELAYAPI_FUZZ_STEPS") or 12)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
USER, PASSWORD = "fuzz", "pw"  # tests.factories.UserFactory's password

SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=not RANDOM,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)

# (test, "METHOD path", status) -> answers, reported at the end of the module.
ANSWERS = Counter()


def generated_schema():
    """The schema as /ga/api/v3/schema answers it, generated in process at collection (the
    tests are made from it before any server runs); `test_the_served_schema_is_the_one_fuzzed`
    checks that the live server serves exactly this."""
    from drf_spectacular.generators import SchemaGenerator

    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True)))


def load(with_security_parameters):
    schema = schemathesis.openapi.from_dict(generated_schema())
    schema.config.update(basic_auth=(USER, PASSWORD))
    schema.config.generation.update(
        max_examples=EXAMPLES,
        database="none",
        with_security_parameters=with_security_parameters,
    )
    return schema


# Each operation is also called with made-up and malformed credentials (401, and 429 once the
# address is locked out); the scenarios always log in, to get as far as they can.
SCHEMA = load(with_security_parameters=True)
LOGGED_IN = load(with_security_parameters=False)


def no_delay(httpd):
    """TCP_NODELAY on the live server's connections. Its handler sends an answer's headers and
    its body separately, and with Nagle's algorithm the body waits for the client's delayed ACK
    of the headers: 40 ms a request, most of the fuzzing's time otherwise."""
    if getattr(httpd, "no_delay", False):
        return
    accept = httpd.get_request

    def get_request():
        connection, address = accept()
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return connection, address

    httpd.get_request, httpd.no_delay = get_request, True


@pytest.fixture
def server(live_server, transactional_db):
    """The live server's URL, with the superuser the fuzzing logs in as."""
    UserFactory(username=USER, is_superuser=True)
    no_delay(live_server.thread.httpd)
    return live_server.url


@pytest.fixture
def session():
    # Straight to the live server on loopback, whatever proxy the environment names.
    with requests.Session() as session:
        session.trust_env = False
        yield session


def report(write_line):
    """One line per test: its requests and their statuses (tests/fuzz/conftest.py prints it at
    the end of the run); per operation too with RELAYAPI_FUZZ_VERBOSE=1."""
    for test in ("every operation", "stateful"):
        answers = {key[1:]: n for key, n in ANSWERS.items() if key[0] == test}
        if not answers:
            continue
        statuses = Counter()
        for (_, status), n in answers.items():
            statuses[status] += n
        summary = ", ".join(f"{status}: {n}" for status, n in sorted(statuses.items()))
        write_line(
            f"schemathesis, {test}: {sum(answers.values())} requests over "
            f"{len({operation for operation, _ in answers})} operations ({summary})"
        )
        if os.environ.get("RELAYAPI_FUZZ_VERBOSE"):
            for (operation, status), n in sorted(answers.items()):
                write_line(f"    {operation} {status}: {n}")


def test_the_served_schema_is_the_one_fuzzed(server, session):
    served = session.get(f"{server}/ga/api/v3/schema", timeout=30)

    assert served.status_code == 200
    assert served.json() == SCHEMA.raw_schema


@SCHEMA.parametrize()
@SETTINGS
def test_every_operation(case, server, session):
    response = case.call_and_validate(base_url=server, session=session, checks=CHECKS)
    ANSWERS["every operation", case.operation.label, response.status_code] += 1


def test_stateful(server, session):
    failures, scenarios = [], []

    class Workflow(LOGGED_IN.as_state_machine()):
        def setup(self):
            scenarios.append(self)

        def get_call_kwargs(self, case):
            return {"base_url": server, "session": session}

        def after_call(self, response, case):
            super().after_call(response, case)
            ANSWERS["stateful", case.operation.label, response.status_code] += 1

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            try:
                case.validate_response(
                    response,
                    checks=CHECKS,
                    transport_kwargs=kwargs or None,
                    recorder=self.recorder,
                )
            except FailureGroup as failure:
                failures.append(failure)
                raise

    # Scenarios run against one database that each of them changes, so Hypothesis may find that
    # a choice it replays leads elsewhere than before (a response landed in another bundle) and
    # stop the run as "flaky". As schemathesis' own runner does, that ends one suite of
    # scenarios, not the test: the next suite goes on until the budget is spent. Every check
    # failure is kept as it happens and fails the test, whether Hypothesis could replay it or not.
    for suite in range(100):
        remaining = SCENARIOS - len(scenarios)
        if remaining <= 0:
            break
        machine = Workflow if RANDOM else hypothesis.seed(suite)(Workflow)
        try:
            # Generation only, as schemathesis' default for scenarios: shrinking would replay
            # them against a database the first run has changed.
            machine.run(
                settings=settings(
                    SETTINGS,
                    max_examples=remaining,
                    derandomize=False,
                    phases=[Phase.generate],
                    stateful_step_count=STEPS,
                )
            )
        except Flaky:
            if not failures:
                continue
        if failures:
            raise failures[0]
    assert len(scenarios) >= SCENARIOS
