"""Fixtures of the real-Postfix tests: one private Postfix instance per test session (reset to
its base configuration before each test) and aiosmtpd sinks, stopped after each test.

They need Debian's postfix (and libsasl2-modules for SASL), aiosmtpd, and root (a second
instance is started with `postfix -c DIR start`); without them the tests are skipped. Nothing
here imports aiosmtpd before a fixture runs: a skip while a conftest loads breaks pytest.
"""

import importlib.util
import os
import shutil

import pytest

POSTFIX = "/usr/sbin/postfix"


def _no_aiosmtpd():
    if importlib.util.find_spec("aiosmtpd") is None:
        return "aiosmtpd is not installed (a dev dependency)"
    return None


def _unavailable():
    if not os.path.exists(POSTFIX) or not shutil.which("postmap"):
        return "Debian's postfix package is not installed"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root"
    return _no_aiosmtpd()


@pytest.fixture(scope="session")
def postfix_instance():
    reason = _unavailable()
    if reason:
        pytest.skip(reason)
    from tests.postfix.harness import PostfixInstance

    instance = PostfixInstance()
    try:
        instance.start()
        yield instance
    finally:
        instance.destroy()


@pytest.fixture
def postfix(postfix_instance):
    """The session's instance in its base configuration, with an empty queue."""
    postfix_instance.reset()
    return postfix_instance


@pytest.fixture
def make_sink():
    """make_sink(**Sink options) -> a started Sink on a free 127.0.0.1 port."""
    reason = _no_aiosmtpd()
    if reason:
        pytest.skip(reason)
    from tests.postfix.harness import Sink

    sinks = []

    def make(**options):
        sink = Sink(**options).start()
        sinks.append(sink)
        return sink

    yield make
    for sink in sinks:
        sink.stop()
