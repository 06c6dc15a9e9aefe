"""References are picked and edited in the browser: a redirect is chosen by typing part of a
name (each result with its type, the record itself never offered), and a routing rule's override
domains and targets are edited on its page and read back through the API."""

import re

from playwright.sync_api import expect

from tests.browser.conftest import log_in
from tests.browser.test_refused_delete import relay


def pick(page, row, search, choice):
    """In `row`, open the VirtualMTA picker, type `search`, choose the result named `choice`."""
    row.locator(".select2-selection").click()
    page.locator(".select2-container--open .select2-search__field").fill(search)
    page.locator(".select2-results__option", has_text=choice).click()


def test_a_redirect_is_picked_by_name_and_type(page, greenarrow):
    """Typing "relay" on relay-b's page offers relay-a with its type, not relay-b itself;
    choosing it and saving sets the redirect, as the API then reports."""
    for name, ip in (("relay-a", "192.0.2.1"), ("relay-b", "192.0.2.2")):
        status, _ = greenarrow.post("/relay_servers", relay(name, ip))
        assert status == 200
    _, listed = greenarrow.get("/relay_servers")
    ids = {r["name"]: r["id"] for r in listed["data"]["relay_servers"]}
    log_in(page, "admin")
    page.goto(f"/admin/relays/relayserver/{ids['relay-b']}/change/")

    page.locator(".field-redirect .select2-selection").click()
    page.locator(".select2-container--open .select2-search__field").fill("relay")
    results = page.locator(".select2-results__option")
    expect(results).to_have_text(["relay-a (relay server)"])
    results.first.click()
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page).to_have_url(re.compile(r"/admin/relays/relayserver/$"))
    _, got = greenarrow.get(f"/relay_servers/{ids['relay-b']}")
    assert got["data"]["relay_server"]["redirect"] == {
        "type": "relay_server",
        "id": ids["relay-a"],
        "name": "relay-a",
    }


def test_a_routing_rule_s_override_domains_and_targets_are_edited(page, greenarrow):
    """On the rule's page: the override's domains are retyped, a second target is picked by
    name with portion 3 (its share shows once saved), and the API reads back exactly that, the
    override keeping its id."""
    for name, ip in (("postmark-01", "192.0.2.1"), ("mailgun-01", "192.0.2.2")):
        status, _ = greenarrow.post("/relay_servers", relay(name, ip))
        assert status == 200
    status, created = greenarrow.post(
        "/routing_rules",
        {
            "routing_rule": {
                "name": "rule-a",
                "default": {
                    "randomization_type": "random",
                    "deliver_through": [
                        {"virtual_mta": {"name": "postmark-01"}, "portion_of_mail": 1}
                    ],
                },
                "domain_overrides": [
                    {
                        "domains": ["example.com"],
                        "randomization_type": "random",
                        "deliver_through": [
                            {"virtual_mta": {"name": "postmark-01"}, "portion_of_mail": 1}
                        ],
                    }
                ],
            }
        },
    )
    assert status == 200, created
    rule = created["data"]["routing_rule"]
    log_in(page, "admin")
    page.goto(f"/admin/relays/routingrule/{rule['id']}/change/")

    override = page.locator("#override-0")
    override.get_by_label("Domains").fill("example.com\n[*.]shop.example")
    second = override.locator("tr.target").nth(1)
    pick(page, second, "mailgun", "mailgun-01 (relay server)")
    second.locator("input[name$='-portion_of_mail']").fill("3")
    page.get_by_role("button", name="Save and continue editing").click()

    expect(page.locator(".messagelist")).to_contain_text("was changed")
    expect(page.locator("#override-0 tr.target .share")).to_have_text(["25.0%", "75.0%", "", ""])
    _, got = greenarrow.get(f"/routing_rules/{rule['id']}")
    (saved,) = got["data"]["routing_rule"]["domain_overrides"]
    assert saved["id"] == rule["domain_overrides"][0]["id"]
    assert saved["domains"] == ["example.com", "[*.]shop.example"]
    assert [(t["virtual_mta"]["name"], t["portion_of_mail"]) for t in saved["deliver_through"]] == [
        ("postmark-01", 1),
        ("mailgun-01", 3),
    ]
