from relays.models import RelayServer, VirtualMta
from tests.conftest import error, ok
from tests.factories import RelayServerFactory


def test_delete_answers_empty_data_and_removes_the_record(admin):
    relay = RelayServerFactory()

    response = admin.delete(f"/relay_servers/{relay.id}")

    assert response.status_code == 200
    assert response.json() == ok({})
    assert not VirtualMta.objects.filter(id=relay.id).exists()


def test_delete_refused_while_redirect_points_here(admin, unchanged):
    relay = RelayServerFactory(name="target")
    first = RelayServerFactory(name="first", redirect=relay)
    second = RelayServerFactory(name="second", redirect=relay)

    with unchanged():
        response = admin.delete(f"/relay_servers/{relay.id}")

    assert response.status_code == 409
    assert response.json() == error(
        "validation_failed",
        f"relay_server {relay.id} (target) is used by relay_server {first.id} (first) as its redirect",
        f"relay_server {relay.id} (target) is used by relay_server {second.id} (second) as its redirect",
    )


def test_delete_allowed_once_the_referrer_lets_go(admin):
    relay = RelayServerFactory()
    referrer = RelayServerFactory(redirect=relay)
    admin.put(f"/relay_servers/{referrer.id}", {"relay_server": {"redirect": None}})

    response = admin.delete(f"/relay_servers/{relay.id}")

    assert response.status_code == 200
    assert list(RelayServer.objects.values_list("id", flat=True)) == [referrer.id]


def test_delete_of_a_missing_record_is_not_found(admin):
    response = admin.delete("/relay_servers/31337")

    assert response.status_code == 404
    assert response.json() == error("not_found", "no relay_server with id 31337")
