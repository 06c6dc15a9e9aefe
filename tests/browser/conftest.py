"""Headless-browser tests of the admin: a real Chromium (Debian's, /usr/bin/chromium) driven by
Playwright against pytest-django's live server, on the same database as the rest of the suite.

One browser for all of them, a fresh context (cookies, storage) and page per test. Every wait
is Playwright's own auto-waiting (actions wait for their element, `expect` retries until its
timeout); nothing sleeps.
"""

import base64
import json
import os
import re
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest
from playwright.sync_api import expect, sync_playwright

from deploy.chromium import CHROMIUM, launch

PASSWORD = "pw"  # tests.factories.UserFactory's
GA = "/ga/api/v3/eng"
# Straight to the live server on loopback, whatever proxy the environment names.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))

# A failing step fails within this, rather than after Playwright's 30 s default.
expect.set_options(timeout=10_000)


@contextmanager
def orm_beside_playwright():
    """While Playwright runs, the tests' own database calls are allowed.

    Playwright's sync API drives the browser from an asyncio event loop that it runs in the
    test's own thread (in a greenlet), and that loop stays registered as the thread's running
    loop for as long as Playwright is started. Django's ORM refuses to run in a thread with a
    running loop (SynchronousOnlyOperation), a guard against blocking an async server's loop
    with a database call. Nothing awaits on this loop while a test queries the database
    (Playwright's calls block until they are done), so the guard has nothing to protect here,
    and DJANGO_ALLOW_ASYNC_UNSAFE turns it off. (The live server answers in threads of its own,
    without a loop, and is not concerned.)

    Set only for as long as Playwright runs, not for the whole test session: child processes
    inherit the environment, and `manage.py check --deploy` rightly fails on this variable
    (async.E001), which tests/test_deploy_settings.py would otherwise see.
    """
    name = "DJANGO_ALLOW_ASYNC_UNSAFE"
    before = os.environ.get(name)
    os.environ[name] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


# Package scope: one Chromium for all the browser tests, started with the first of them and
# stopped after the last, so that Playwright's event loop (and the variable above) end with
# them instead of lasting through the rest of the test session.
@pytest.fixture(scope="package")
def chromium():
    """The one headless Chromium of the browser tests.

    Without /usr/bin/chromium the browser tests are skipped, unless we run as root: then the
    test command (deploy/run-tests.sh) installs Debian's package first, so its absence is an
    error and fails every browser test loudly.
    """
    if not os.access(CHROMIUM, os.X_OK):
        message = f"{CHROMIUM} is missing (Debian's chromium package)"
        if os.geteuid() == 0:
            pytest.fail(f"{message}; deploy/run-tests.sh installs it when run as root")
        pytest.skip(f"{message}; install it to run the browser tests of the admin")
    with orm_beside_playwright(), sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()


@pytest.fixture
def site(live_server):
    """The live server's base URL, on 127.0.0.1 (pytest-django serves it on localhost)."""
    return live_server.url.replace("://localhost:", "://127.0.0.1:")


@pytest.fixture
def page(chromium, site):
    """A new page in a context of its own (no cookies), its relative URLs on the live server."""
    context = chromium.new_context(base_url=site, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def superuser(transactional_db):
    from tests.factories import UserFactory

    return UserFactory(username="admin", is_superuser=True)


def log_in(page, username, password=PASSWORD):
    """Log in through the admin's login form, as a person does; lands on the admin home."""
    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("#user-tools")).to_contain_text(username)


class GreenArrowApi:
    """The GreenArrow REST API as a script calls it: HTTP Basic, JSON, over real HTTP."""

    def __init__(self, site, username="admin", password=PASSWORD):
        self.base = site + GA
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def call(self, method, path, body=None):
        """(HTTP status, decoded JSON envelope)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base + path, data=data, method=method, headers=self.headers
        )
        try:
            with DIRECT.open(request, timeout=10) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            with error:
                return error.code, json.load(error)

    def get(self, path):
        return self.call("GET", path)

    def post(self, path, body):
        return self.call("POST", path, body)


@pytest.fixture
def greenarrow(site, superuser):
    """The GreenArrow API, as the superuser."""
    return GreenArrowApi(site)
