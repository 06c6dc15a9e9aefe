"""`/`: a page naming the product for a browser's GET; the Mail Manager endpoint for everything
else, answering exactly as it did."""

import json

from django.test import Client, RequestFactory

from relays.mailmanager.views import endpoint


def test_a_browser_get_answers_a_page_naming_the_product(db):
    page = Client().get("/", HTTP_ACCEPT="text/html")

    assert page.status_code == 200
    assert page["Content-Type"] == "text/html; charset=utf-8"
    text = page.content.decode()
    assert "<h1>RelayAPI</h1>" in text
    assert '<a href="/admin/">' in text
    assert "/ga/api/v3/eng/" in text and "X-Amz-Target" in text


def test_head_answers_the_page_without_a_body(db):
    answer = Client().head("/")

    assert answer.status_code == 200
    assert answer.content == b""


def same_answer(through_root, direct):
    """Status, body and headers alike, but for the request id each request gets anew."""
    assert through_root.status_code == direct.status_code
    assert through_root.content == direct.content
    for header in ("Content-Type", "Cache-Control", "X-Amzn-Errortype"):
        assert through_root.get(header) == direct.get(header)


def test_a_get_with_x_amz_target_still_reaches_mail_manager(db):
    through_root = Client().get("/", HTTP_X_AMZ_TARGET="MailManagerSvc.ListRelays")

    assert through_root.status_code == 400
    assert json.loads(through_root.content) == {
        "__type": "com.amazonaws.mailmanager#UnknownOperationException",
        "Message": "unknown operation MailManagerSvc.ListRelays",
    }
    direct = endpoint(RequestFactory().get("/", HTTP_X_AMZ_TARGET="MailManagerSvc.ListRelays"))
    same_answer(through_root, direct)


def test_post_answers_exactly_as_the_mail_manager_endpoint(db):
    for target in ("MailManagerSvc.ListRelays", "MailManagerSvc.Nope", None):
        extra = {"HTTP_X_AMZ_TARGET": target} if target else {}
        args = ("/", "{}")
        kwargs = {"content_type": "application/x-amz-json-1.0", **extra}

        same_answer(
            Client().post(*args, **kwargs), endpoint(RequestFactory().post(*args, **kwargs))
        )


def test_the_page_links_the_api_s_docs_and_schema_which_answer(client, db):
    page = client.get("/", HTTP_ACCEPT="text/html").content.decode()

    for url in ("/ga/api/v3/docs", "/ga/api/v3/schema"):
        assert f'href="{url}"' in page
        assert client.get(url).status_code == 200
