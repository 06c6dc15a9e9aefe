"""`manage.py render_postfix --out DIR` compiles the store into a Postfix configuration fragment:
one smtp service per relay server and IP address, routes from the default VirtualMTA with
redirects and routing rules resolved, weights as repetitions, limits always explicit; the same
store always renders the same bytes, and a secret is only ever in a 0600 file."""

import io
import stat
from fractions import Fraction

import pytest
from django.core.management import call_command

from relays.models import DefaultVirtualMta
from relays.postfix.plan import rate_plan, repetitions
from tests.factories import IpAddressFactory, RelayServerFactory, RoutingRuleFactory, add_override


def rendered(tmp_path):
    out = tmp_path / "out"
    call_command("render_postfix", "--out", str(out), stdout=io.StringIO())
    return out


def main_cf(out):
    return (out / "main.cf.relayapi").read_text()


def master_cf(out):
    return (out / "master.cf.relayapi").read_text()


def transport_maps(out):
    """{frozenset(keys): [next hops of its randmap]}, and under "*" the next hops of every
    domain no key names (sender_dependent_default_transport_maps)."""
    main, found = main_cf(out), {}
    for line in main.splitlines():
        if line.startswith("sender_dependent_default_transport_maps = randmap:{"):
            found["*"] = line.split("randmap:{", 1)[1].removesuffix("}").split(", ")
    text = main.split("transport_maps =\n", 1)[1] if "transport_maps =\n" in main else ""
    for line in text.strip().splitlines():
        table, _, randmap = line.strip().rstrip(",").partition(", randmap:{")
        path = table.removeprefix("pipemap:{hash:")
        with open(path) as rows:
            keys = frozenset(row.split()[0] for row in rows)
        found[keys] = randmap.removesuffix("}}").split(", ")
    return found


def make_default(vmta):
    DefaultVirtualMta.objects.update_or_create(id=1, defaults={"virtual_mta": vmta})


# --- services ------------------------------------------------------------------------------


def test_each_relay_is_a_service_bound_to_its_source_ip_with_its_helo(tmp_path, db):
    relay = RelayServerFactory(source_ip="127.0.0.2", source_hostname="relay-a.example")

    master = master_cf(rendered(tmp_path))

    assert (
        f"relayapi_r{relay.pk} unix - - n - - smtp\n"
        "  -o smtp_bind_address=127.0.0.2\n"
        "  -o smtp_bind_address_enforce=yes\n"
        "  -o smtp_helo_name=relay-a.example\n"
        "  -o smtp_tls_security_level=may\n"
    ) in master


def test_stored_credentials_go_to_a_0600_map_keyed_by_the_next_hop_never_to_master_cf(tmp_path, db):
    relay = RelayServerFactory(
        destination_hostname="smtp.example.net",
        destination_port=587,
        destination_username="user-a",
        destination_password="s3cret pass:word",
    )

    out = rendered(tmp_path)

    table = out / "sasl" / f"relayapi_r{relay.pk}"
    assert table.read_text() == "[smtp.example.net]:587 user-a:s3cret pass:word\n"
    assert stat.S_IMODE(table.stat().st_mode) == 0o600
    master = master_cf(out)
    assert "s3cret" not in master and "s3cret" not in main_cf(out)
    assert f"smtp_sasl_password_maps=hash:{out}/sasl/relayapi_r{relay.pk}" in master
    # The password never crosses the network in clear: TLS is required for this service.
    assert "smtp_tls_security_level=encrypt" in master


@pytest.mark.parametrize(
    "poison",
    [
        {"destination_username": "a:b", "destination_password": "x"},
        {"destination_username": "", "destination_password": "x"},
        {"destination_username": None, "destination_password": "x"},
        {"destination_username": "u", "destination_password": " x "},
        {"destination_hostname": "smtp_1.example.com"},
        {"source_hostname": "helo_1.example.com"},
    ],
)
def test_a_record_postfix_cannot_take_is_held_and_named_while_the_rest_renders(
    tmp_path, db, poison
):
    """Older data (or rows loaded in SQL) the write rules now refuse: that relay's mail waits,
    it is named, and everything else renders, an IP address's pause included."""
    odd = RelayServerFactory(name="odd", **poison)
    good = RelayServerFactory(name="good", with_auth=True)
    paused = IpAddressFactory(delivery_paused=True)
    err = io.StringIO()

    call_command("render_postfix", "--out", str(tmp_path / "out"), stdout=io.StringIO(), stderr=err)

    main = (tmp_path / "out" / "main.cf.relayapi").read_text()
    held = next(line for line in main.splitlines() if line.startswith("defer_transports = "))
    assert f"relayapi_r{odd.pk}" in held and f"relayapi_ip{paused.pk}" in held
    assert f"relayapi_r{good.pk}" not in held
    assert f"relay server {odd.pk} (odd): Postfix cannot take its" in err.getvalue()
    assert not (tmp_path / "out" / "sasl" / f"relayapi_r{odd.pk}").exists()
    assert (tmp_path / "out" / "sasl" / f"relayapi_r{good.pk}").exists()
    master = (tmp_path / "out" / "master.cf.relayapi").read_text()
    assert "_1.example.com" not in main + master


def test_the_admin_panel_and_the_render_agree_on_what_is_held(tmp_path, browser):
    from relays import resolution

    arn = RelayServerFactory(
        name="arn", secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:x"
    )

    [path] = resolution.delivery_paths(arn)
    call_command("render_postfix", "--out", str(tmp_path / "out"), stdout=io.StringIO())

    assert path.held == "its credentials are a Secret ARN, which Postfix cannot read"
    page = browser.get(f"/admin/relays/relayserver/{arn.pk}/change/").content.decode()
    assert "held: its credentials are a Secret ARN, which Postfix cannot read; mail waits" in page
    main = (tmp_path / "out" / "main.cf.relayapi").read_text()
    assert f"defer_transports = relayapi_r{arn.pk}" in main


def test_concurrency_limits_are_always_written_0_included(tmp_path, db):
    limited = RelayServerFactory(max_concurrent_connections=2, max_messages_per_hour=0)
    free = RelayServerFactory(max_concurrent_connections=0, max_messages_per_hour=0)

    main = main_cf(rendered(tmp_path))

    assert f"relayapi_r{limited.pk}_destination_concurrency_limit = 2\n" in main
    assert f"relayapi_r{free.pk}_destination_concurrency_limit = 0\n" in main
    assert f"relayapi_r{free.pk}_destination_rate_delay = 0s\n" in main


def test_a_rate_limit_becomes_copies_with_whole_second_delays(tmp_path, db):
    relay = RelayServerFactory(max_messages_per_hour=7200, max_concurrent_connections=0)

    out = rendered(tmp_path)

    main = main_cf(out)
    assert f"relayapi_r{relay.pk}_1_destination_rate_delay = 1s\n" in main
    assert f"relayapi_r{relay.pk}_2_destination_rate_delay = 1s\n" in main
    assert f"relayapi_r{relay.pk}_3_" not in main
    assert f"relayapi_r{relay.pk}_1_destination_concurrency_limit = 1\n" in main


# --- routes --------------------------------------------------------------------------------


def test_without_a_default_virtual_mta_no_mail_is_routed(tmp_path, db):
    RelayServerFactory()

    assert transport_maps(rendered(tmp_path)) == {}


def test_a_default_relay_takes_every_domain(tmp_path, db):
    relay = RelayServerFactory(destination_hostname="smtp.example.net", destination_port=2525)
    make_default(relay)

    maps = transport_maps(rendered(tmp_path))

    assert maps == {"*": [f"relayapi_r{relay.pk}:[smtp.example.net]:2525"]}


def test_redirects_are_resolved_and_a_paused_ip_holds_the_mail(tmp_path, db):
    ip = IpAddressFactory(delivery_paused=True)
    relay = RelayServerFactory(redirect=ip)
    make_default(relay)

    out = rendered(tmp_path)

    # The pause wins over the redirect: the IP's own service, whose mail waits in the queue.
    assert transport_maps(out) == {"*": [f"relayapi_ip{ip.pk}:"]}
    assert f"defer_transports = relayapi_ip{ip.pk}\n" in main_cf(out)


def test_weights_become_repetitions_reduced_to_small_integers(tmp_path, db):
    a, b = RelayServerFactory(), RelayServerFactory()
    rule = RoutingRuleFactory(targets=[(a, 75.0), (b, 25.0)])
    make_default(rule)

    (hops,) = transport_maps(rendered(tmp_path)).values()

    assert [h.split(":")[0] for h in hops] == [f"relayapi_r{a.pk}"] * 3 + [f"relayapi_r{b.pk}"]


def test_domain_overrides_become_keys_and_the_first_matching_override_wins(tmp_path, db):
    a, b, c = RelayServerFactory(), RelayServerFactory(), RelayServerFactory()
    rule = RoutingRuleFactory(targets=[(a, 1)])
    add_override(rule, ["[*.]example.com"], [(b, 1)])
    # Listed after [*.]example.com, so never used for shop.example.com (the API's rule), though
    # Postfix would prefer the more specific key: it is compiled to b's route.
    add_override(rule, ["shop.example.com", "*.example.org"], [(c, 1)])
    make_default(rule)

    maps = transport_maps(rendered(tmp_path))

    hop = {
        r.pk: f"relayapi_r{r.pk}:[{r.destination_hostname}]:{r.destination_port}" for r in (a, b, c)
    }
    assert maps == {
        "*": [hop[a.pk]],
        frozenset({"example.com", ".example.com", "shop.example.com"}): [hop[b.pk]],
        frozenset({".example.org"}): [hop[c.pk]],
    }


def test_a_secret_arn_relay_holds_the_mail_postfix_cannot_read_the_secret(tmp_path, db):
    relay = RelayServerFactory(
        secret_arn="arn:aws:secretsmanager:us-east-1:123456789012:secret:smtp/a",
        destination_hostname="smtp.example.net",
        destination_port=587,
    )
    make_default(relay)
    err = io.StringIO()

    call_command("render_postfix", "--out", str(tmp_path / "out"), stdout=io.StringIO(), stderr=err)

    out = tmp_path / "out"
    assert transport_maps(out) == {"*": [f"relayapi_r{relay.pk}:[smtp.example.net]:587"]}
    assert f"defer_transports = relayapi_r{relay.pk}\n" in main_cf(out)
    assert "Secret ARN, which Postfix cannot read" in err.getvalue()


def test_the_same_store_renders_the_same_bytes(tmp_path, db):
    a, b = RelayServerFactory(with_auth=True), RelayServerFactory(max_messages_per_hour=100)
    rule = RoutingRuleFactory(targets=[(a, 2), (b, 1)])
    add_override(rule, ["example.com"], [(b, 1)])
    make_default(rule)

    first = {
        p.relative_to(tmp_path / "out"): p.read_bytes()
        for p in rendered(tmp_path).rglob("*")
        if p.is_file()
    }
    (tmp_path / "out").rename(tmp_path / "first")
    second = {
        p.relative_to(tmp_path / "out"): p.read_bytes()
        for p in rendered(tmp_path).rglob("*")
        if p.is_file()
    }

    assert first == second


# --- the arithmetic ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shares", "counts"),
    [
        ([0.75, 0.25], [3, 1]),
        ([0.5, 0.5], [1, 1]),
        ([1 / 3, 2 / 3], [33, 67]),
        ([0.001, 0.999], [1, 99]),  # a share that is not zero keeps one entry
        ([1.0], [1]),
    ],
)
def test_shares_become_whole_percent_repetitions(shares, counts):
    assert repetitions(shares) == counts


@pytest.mark.parametrize(
    ("per_hour", "connections", "copies", "delay", "achieved"),
    [
        (0, 5, 1, 0, 0),
        (3600, 0, 1, 1, 3600),
        (100, 0, 1, 36, 100),
        (7000, 4, 3, 2, 5400),  # at most 4 connections: 3 copies every 2 s is the closest
        (7000, 0, 31, 16, 6975),  # at most 32 copies
        (1, 0, 1, 3600, 1),
    ],
)
def test_a_rate_limit_is_honoured_as_closely_as_whole_seconds_allow(
    per_hour, connections, copies, delay, achieved
):
    plan = rate_plan(per_hour, connections)

    assert (plan.copies, plan.delay, plan.messages_per_hour) == (copies, delay, Fraction(achieved))
