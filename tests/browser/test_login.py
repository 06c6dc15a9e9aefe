"""Logging in to the admin through its login form, in a real browser."""

import re

from playwright.sync_api import expect

from tests.browser.conftest import log_in


def test_a_superuser_logs_in_through_the_form_and_lands_on_the_relayapi_home(page, superuser):
    """The admin sends an anonymous visitor to its login form; the right username and password
    open the RelayAPI home page, with its overview, as that user."""
    page.goto("/admin/")

    expect(page).to_have_url(re.compile(r"/admin/login/\?next=/admin/$"))
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.locator("#site-name")).to_have_text("RelayAPI")
    expect(page.locator("#user-tools")).to_contain_text("admin")
    expect(page.get_by_role("link", name="Relay servers").first).to_be_visible()


def test_a_wrong_password_keeps_the_visitor_on_the_login_form(page, superuser):
    """A wrong password is refused with the admin's one message for every refusal, and the
    visitor stays logged out; the right one then works."""
    page.goto("/admin/login/?next=/admin/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()

    expect(page.locator(".errornote")).to_contain_text(
        "Please enter the correct username and password for a staff account."
    )
    expect(page).to_have_url(re.compile(r"/admin/login/"))
    expect(page.locator("#user-tools")).to_have_count(0)
    log_in(page, "admin")
