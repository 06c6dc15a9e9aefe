"""A Mail Manager access key made in the admin, in a real browser: its secret is shown once,
it signs boto3 calls, and once deactivated it signs nothing."""

import re

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from django.conf import settings
from playwright.sync_api import expect

from relays.models import AccessKey
from tests.browser.conftest import log_in

KEYS = "/admin/relays/accesskey/"


def mail_manager(site, key_id, secret):
    return boto3.client(
        "mailmanager",
        endpoint_url=site,
        # The server takes signatures scoped to its own region only (MAILMANAGER_REGION).
        region_name=settings.MAILMANAGER_REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )


def test_a_key_made_in_the_admin_shows_its_secret_once_signs_calls_and_is_revoked(
    page, site, superuser
):
    """The key is made for the superuser on the Add page; the next page shows its secret, and
    neither a reload of that page nor the key's change page shows it again. boto3 lists relays
    with it; after "Active" is unticked on the change page, boto3 is refused as an unknown
    client."""
    log_in(page, "admin")
    page.goto(f"{KEYS}add/")
    page.get_by_label("User").select_option(label="admin")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page).to_have_url(re.compile(r"/admin/relays/accesskey/\d+/created/$"))
    key = AccessKey.objects.get(user=superuser)
    expect(page.locator("#access-key-id")).to_have_text(key.access_key_id)
    expect(page.locator("#secret-access-key")).to_have_text(key.secret)
    secret = page.locator("#secret-access-key").inner_text()

    page.reload()
    expect(page.locator("#access-key-id")).to_have_text(key.access_key_id)
    expect(page.locator("#secret-access-key")).to_have_count(0)
    expect(page.locator(".errornote")).to_contain_text("shown once")
    assert secret not in page.content()

    page.goto(f"{KEYS}{key.pk}/change/")
    expect(page.locator("#content")).to_contain_text(key.access_key_id)
    assert secret not in page.content()

    client = mail_manager(site, key.access_key_id, secret)
    assert client.list_relays()["Relays"] == []

    page.get_by_label("Active").uncheck()
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator(".messagelist .success")).to_be_visible()

    with pytest.raises(ClientError) as refused:
        client.list_relays()
    assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert AccessKey.objects.get(pk=key.pk).is_active is False
