"""No admin URL or POST answers 500 for anything a browser can send: ids too large for any
column, NUL characters, searches the database cannot finish in time."""

import pytest

from relays.models import DefaultVirtualMta
from tests.factories import RelayServerFactory

HUGE = "9" * 20  # more than any 64-bit id


@pytest.fixture
def root(client, db):
    from tests.factories import UserFactory

    UserFactory(username="root", is_superuser=True)
    client.login(username="root", password="pw")
    client.raise_request_exception = False
    return client


def test_a_20_digit_default_virtual_mta_is_a_form_error(root):
    page = root.post("/admin/relays/defaultvirtualmta/1/change/", {"default": HUGE}, follow=True)

    assert page.status_code == 200
    assert not DefaultVirtualMta.objects.exclude(virtual_mta=None).exists()


@pytest.mark.parametrize(
    "url",
    [
        f"/admin/relays/virtualmta/search/?term=a&exclude={HUGE}",
        f"/admin/relays/relayserver/{HUGE}/change/",
        "/admin/relays/virtualmta/search/?term=%00",
        "/admin/relays/relayserver/?q=%00",
        "/admin/relays/relayserver/?redirected=%00",
        "/admin/relays/auditentry/?q=%00",
        "/admin/relays/auditentry/?record_type=%00",
    ],
)
def test_an_odd_query_is_answered_without_a_500(root, url):
    RelayServerFactory(name="a-relay")

    page = root.get(url)

    assert page.status_code < 500, (url, page.status_code)


def test_a_redirect_picked_by_a_20_digit_id_is_a_form_error(root):
    relay = RelayServerFactory(name="a-relay")
    from tests.test_credentials_bound import change_form

    page = root.post(
        f"/admin/relays/relayserver/{relay.pk}/change/", change_form(relay, redirect=HUGE)
    )

    assert page.status_code == 200
    assert "redirect" in page.context["adminform"].form.errors


def test_a_search_of_200_words_is_refused_with_a_message_not_run(root):
    page = root.get("/admin/relays/auditentry/", {"q": " ".join(f"w{i}" for i in range(200))})

    assert page.status_code == 200
    assert "A search takes at most 10 words; this one has 200" in page.content.decode()


def test_a_search_of_a_few_words_still_searches(root):
    RelayServerFactory(name="alpha-relay")

    page = root.get("/admin/relays/relayserver/", {"q": "alpha relay"})

    assert "alpha-relay" in page.content.decode()


def test_a_statement_timeout_in_the_admin_is_a_503_page_not_a_500(root, monkeypatch):
    from django.db import OperationalError

    from relays.admin.audited import AuditEntryAdmin

    def timed_out(self, request, queryset, search_term):
        raise OperationalError("canceling statement due to statement timeout")

    monkeypatch.setattr(AuditEntryAdmin, "get_search_results", timed_out)

    page = root.get("/admin/relays/auditentry/", {"q": "anything"})

    assert page.status_code == 503
    assert page["Retry-After"] == "5"
    assert b"The database did not answer in time" in page.content
    assert b"Nothing was changed" in page.content
