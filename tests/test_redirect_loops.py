from tests.conftest import error
from tests.factories import RelayServerFactory


def redirect(admin, relay, target):
    return admin.put(
        f"/relay_servers/{relay.id}", {"relay_server": {"redirect": {"id": target.id}}}
    )


def test_self_redirect_refused(admin, unchanged):
    relay = RelayServerFactory(name="a")

    with unchanged():
        response = redirect(admin, relay, relay)

    assert response.json() == error(
        "validation_failed", "redirect must not point at the VirtualMTA itself"
    )


def test_two_node_loop_refused(admin, unchanged):
    a = RelayServerFactory(name="a")
    b = RelayServerFactory(name="b", redirect=a)

    with unchanged():
        response = redirect(admin, a, b)

    assert response.status_code == 400
    assert response.json() == error(
        "validation_failed", "redirect would create a delivery loop: a -> b -> a"
    )


def test_longer_loop_refused_and_named(admin):
    a = RelayServerFactory(name="a")
    b = RelayServerFactory(name="b", redirect=a)
    c = RelayServerFactory(name="c", redirect=b)

    response = redirect(admin, a, c)

    assert response.json()["error_messages"] == [
        "redirect would create a delivery loop: a -> c -> b -> a"
    ]


def test_chains_without_a_loop_are_allowed(admin):
    a = RelayServerFactory(name="a")
    b = RelayServerFactory(name="b", redirect=a)
    c = RelayServerFactory(name="c")

    response = redirect(admin, c, b)

    assert response.status_code == 200
    c.refresh_from_db()
    assert c.redirect_id == b.id
