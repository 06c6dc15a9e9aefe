import pytest
from django.core import signing

from relays.models import RelayServer
from relays.tokens import make_token
from tests.conftest import error, ok
from tests.factories import RelayServerFactory


@pytest.fixture
def relays_260(db):
    for n in range(260):
        RelayServerFactory(name=f"relay-{n:03}")
    return list(RelayServer.objects.order_by("id").values("id", "name"))


def test_the_vendor_example_shape_for_a_short_list(admin):
    relays = [RelayServerFactory(name=f"relay-{n}") for n in (1, 2, 3)]

    response = admin.get("/relay_servers")

    assert response.json() == ok(
        {
            "relay_servers": [{"id": r.id, "name": r.name} for r in relays],
            "pagination": {
                "page": 0,
                "per_page": 100,
                "num_pages": 1,
                "num_records": 3,
                "next_page_token": None,
            },
        }
    )


def test_an_empty_list_is_one_empty_page(admin):
    pagination = admin.get("/relay_servers").json()["data"]["pagination"]

    assert pagination == {
        "page": 0,
        "per_page": 100,
        "num_pages": 1,
        "num_records": 0,
        "next_page_token": None,
    }


def test_page_numbers_walk_the_list_in_id_order(admin, relays_260):
    pages = [admin.get("/relay_servers", page=str(n)).json()["data"] for n in range(4)]

    assert [p["relay_servers"] for p in pages] == [
        relays_260[0:100],
        relays_260[100:200],
        relays_260[200:],
        [],
    ]
    assert [p["pagination"]["page"] for p in pages] == [0, 1, 2, 3]
    assert {p["pagination"]["num_pages"] for p in pages} == {3}
    assert {p["pagination"]["num_records"] for p in pages} == {260}
    assert [p["pagination"]["next_page_token"] is None for p in pages] == [False, False, True, True]


def test_page_tokens_walk_every_record_exactly_once(admin, relays_260):
    seen, pages, token = [], [], None
    while True:
        query = {"page_token": token} if token else {}
        data = admin.get("/relay_servers", **query).json()["data"]
        seen += data["relay_servers"]
        pages.append(data["pagination"]["page"])
        token = data["pagination"]["next_page_token"]
        if token is None:
            break

    assert seen == relays_260
    assert pages == [0, 1, 2]


def test_a_token_is_keyset_based_so_deletes_do_not_shift_the_next_page(admin, relays_260):
    token = admin.get("/relay_servers").json()["data"]["pagination"]["next_page_token"]
    RelayServer.objects.filter(id__in=[r["id"] for r in relays_260[:50]]).delete()

    page = admin.get("/relay_servers", page_token=token).json()["data"]

    assert page["relay_servers"] == relays_260[100:200]


def test_a_tampered_token_is_an_invalid_request(admin, relays_260):
    token = admin.get("/relay_servers").json()["data"]["pagination"]["next_page_token"]
    forged = signing.dumps({"after": 0, "page": 1}, salt="not-ours")

    for bad in (token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], forged, "garbage"):
        response = admin.get("/relay_servers", page_token=bad)
        assert response.status_code == 400
        assert response.json() == error(
            "invalid_request", "page_token is not a valid page token for this list"
        )


def test_a_token_of_another_list_is_refused(admin):
    response = admin.get("/relay_servers", page_token=make_token("ip_addresses", 0, 1))

    assert response.json() == error(
        "invalid_request", "page_token is not a valid page token for this list"
    )


@pytest.mark.parametrize("page", ["-1", "abc", "1.5", "", "9999999999"])
def test_bad_page_numbers_are_invalid_requests(admin, page):
    response = admin.get("/relay_servers", page=page)

    assert response.status_code == 400
    assert response.json() == error(
        "invalid_request", "page must be an integer from 0 to 999999999"
    )


def test_page_and_page_token_together_are_refused(admin):
    response = admin.get("/relay_servers", page="0", page_token="x")

    assert response.json() == error("invalid_request", "give page or page_token, not both")


def test_unknown_query_parameters_are_refused(admin):
    response = admin.get("/relay_servers", per_page="10")

    assert response.json() == error("invalid_request", "unknown query parameter per_page")


def test_a_remembered_page_start_follows_deletes_and_creates(admin, relays_260):
    assert (
        admin.get("/relay_servers", page="1").json()["data"]["relay_servers"][0] == relays_260[100]
    )

    RelayServer.objects.filter(id=relays_260[0]["id"]).delete()
    after_delete = admin.get("/relay_servers", page="1").json()["data"]["relay_servers"]
    RelayServerFactory(name="relay-new")  # a higher id: page 1 starts where it did
    after_create = admin.get("/relay_servers", page="1").json()["data"]["relay_servers"]

    assert after_delete[0] == relays_260[101]
    assert after_create[0] == relays_260[101]
    assert len(after_create) == 100


def test_a_deep_page_number_costs_a_page_token_once_its_start_is_known(
    admin, relays_260, django_assert_num_queries
):
    admin.get("/relay_servers")  # the user's password is verified (and remembered) here

    # user; count; the start of page 2 (OFFSET over the key index); the page
    with django_assert_num_queries(4):
        first = admin.get("/relay_servers", page="2")
    with django_assert_num_queries(3):
        again = admin.get("/relay_servers", page="2")

    assert first.json() == again.json()
    assert first.json()["data"]["relay_servers"] == relays_260[200:]
