"""The real-Postfix harness, and the Postfix facts RelayAPI's compiler (relays/postfix) relies on,
checked with real mail through a private Postfix instance to aiosmtpd sinks on 127.0.0.1.

Each test writes its Postfix configuration by hand (no compiler involved): these are facts
about Postfix 3.7 (Debian), not about RelayAPI's output.
"""

import collections
import itertools
import os
import signal
import smtplib
import ssl
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("aiosmtpd", reason="aiosmtpd is not installed (a dev dependency)")

from tests.postfix.harness import smtp_service, wait_until

# Facts about Postfix itself, not about the store: what the compiler relies on, pinned for a
# Postfix upgrade. Timing-sensitive on a loaded machine, so not in every run: `make
# postfix-facts` (about 40 s) runs them.
pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.skipif(
        os.environ.get("RELAYAPI_POSTFIX_FACTS") != "1",
        reason="Postfix facts: run with `make postfix-facts` (RELAYAPI_POSTFIX_FACTS=1)",
    ),
]

SENDER = "sender@sender.test"


def hop(sink):
    return f"[127.0.0.1]:{sink.port}"


def deferred_reason(postfix, rcpt, timeout=10):
    """The delay_reason of `rcpt` once it is in the deferred queue."""

    def reason():
        for message in postfix.queue():
            for recipient in message["recipients"]:
                if (
                    recipient["address"] == rcpt
                    and message["queue_name"] == "deferred"
                    and recipient.get("delay_reason")
                ):
                    return recipient["delay_reason"]
        return None

    return wait_until(reason, timeout, message=f"{rcpt} deferred")


def wait_total(sinks, count, timeout=30):
    wait_until(lambda: sum(len(s.received()) for s in sinks) >= count, timeout, message="mail")
    return [m for s in sinks for m in s.received()]


# --- the harness itself ----------------------------------------------------------------------


def test_instance_is_private_and_loopback_only(postfix):
    assert str(postfix.config_dir) != "/etc/postfix"
    assert not os.path.exists("/etc/postfix/main.cf")  # the system instance stays unconfigured
    values = dict(
        line.split(" = ", 1)
        for line in postfix.postconf(
            "queue_directory",
            "data_directory",
            "inet_interfaces",
            "default_transport",
            "relay_transport",
            "smtp_dns_support_level",
        ).splitlines()
    )
    assert values["queue_directory"] == str(postfix.queue_dir)
    assert values["data_directory"] == str(postfix.data_dir)
    assert values["inet_interfaces"] == "127.0.0.1"
    assert values["default_transport"].startswith("error:")
    assert values["relay_transport"].startswith("error:")
    assert values["smtp_dns_support_level"] == "disabled"
    # A domain no test routes is refused at RCPT (default_transport is error:): nothing is
    # queued, nothing bounces.
    refused = postfix.send(SENDER, "someone@example.org", "nowhere")
    assert refused["someone@example.org"][0] == 550
    assert b"no external delivery in tests" in refused["someone@example.org"][1]
    assert postfix.queue() == []
    postfix.flush()


def test_reset_undoes_changes_made_behind_the_harness(postfix):
    """What `render_postfix --apply` does to the instance (its own files, main.cf edited,
    `postfix reload` run directly) is gone after reset()."""
    (postfix.config_dir / "relayapi.d").mkdir()
    (postfix.config_dir / "relayapi").symlink_to("relayapi.d")
    with open(postfix.config_dir / "main.cf", "a") as main_cf:
        main_cf.write("smtpd_banner = $myhostname ESMTP changed\n")
    past = time.time() - 5
    os.utime(postfix.config_dir / "main.cf", (past, past))
    qmgr = postfix.daemons("qmgr")
    postfix.postfix("reload")
    postfix.wait_new_daemon("qmgr", qmgr)
    assert banner(postfix.port).endswith(b"ESMTP changed")
    postfix.reset()
    assert sorted(p.name for p in postfix.config_dir.iterdir()) == ["main.cf", "master.cf"]
    assert banner(postfix.port) == b"relayapi-test.localhost ESMTP Postfix"


def banner(port):
    client = smtplib.SMTP(timeout=10)
    try:
        return client.connect("127.0.0.1", port)[1]
    finally:
        client.close()


def test_sink_records_auth_tls_and_overlap(make_sink):
    sink = make_sink(credentials=("alice", "pass word:1"))
    with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as client:
        client.ehlo("client-a.test")
        client.user, client.password = "alice", "pass word:1"
        client.auth("PLAIN", client.auth_plain)
        client.sendmail("a@x.test", ["b@y.test"], b"Subject: plain\r\n\r\nbody\r\n")
    with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as client:
        client.ehlo("client-b.test")
        client.user, client.password = "alice", "pass word:1"
        client.auth("LOGIN", client.auth_login, initial_response_ok=False)
        client.sendmail("a@x.test", ["b@y.test"], b"Subject: login\r\n\r\nbody\r\n")
    with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as client:
        client.ehlo("client-c.test")
        with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
            client.login("alice", "wrong")
        assert wrong.value.smtp_code == 535
    plain, login = sink.wait_for(2)
    assert (plain.helo, plain.mechanism, plain.login, plain.password) == (
        "client-a.test",
        "PLAIN",
        "alice",
        "pass word:1",
    )
    assert (login.helo, login.mechanism, login.subject) == ("client-b.test", "LOGIN", "login")
    assert plain.peer == "127.0.0.1" and not plain.tls
    assert [a.success for a in sink.auth_attempts][-1] is False

    # Auth required: MAIL without AUTH is refused.
    strict = make_sink(credentials=("alice", "pw"), auth_required=True)
    with smtplib.SMTP("127.0.0.1", strict.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("a@x.test", ["b@y.test"], b"\r\n")
        assert refused.value.smtp_code == 530

    # STARTTLS (self-signed): AUTH only after it.
    tls = make_sink(credentials=("alice", "pw"), starttls=True)
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with smtplib.SMTP("127.0.0.1", tls.port, timeout=10) as client:
        client.ehlo()
        assert not client.has_extn("auth")
        client.starttls(context=context)
        client.ehlo()
        client.login("alice", "pw")
        client.sendmail("a@x.test", ["b@y.test"], b"Subject: tls\r\n\r\nbody\r\n")
    assert tls.wait_for(1)[0].tls

    # Overlap: two transactions open at once, MAIL FROM to the end of DATA.
    overlap = make_sink()
    one, two = (
        smtplib.SMTP("127.0.0.1", overlap.port, timeout=10),
        smtplib.SMTP("127.0.0.1", overlap.port, timeout=10),
    )
    for client in (one, two):
        client.ehlo()
        client.mail("a@x.test")
        client.rcpt("b@y.test")
    for client in (one, two):
        client.data(b"Subject: overlap\r\n\r\nbody\r\n")
        client.quit()
    overlap.wait_for(2)
    assert overlap.max_concurrent == 2
    with pytest.raises(AssertionError, match="2 of 3 messages"):
        overlap.wait_for(3, timeout=0.2)


# --- (a) source address and HELO name --------------------------------------------------------


def test_bind_address_and_helo_name(postfix, make_sink):
    sink = make_sink()
    transport = postfix.write_map(
        "transport",
        {
            "bound.test": f"svc_bound:{hop(sink)}",
            "plain.test": f"svc_plain:{hop(sink)}",
            "unbindable.test": f"svc_unbindable:{hop(sink)}",
            "lenient.test": f"svc_lenient:{hop(sink)}",
        },
    )
    postfix.configure(
        main={"transport_maps": transport},
        master=smtp_service(
            "svc_bound",
            smtp_bind_address="127.0.0.2",
            smtp_bind_address_enforce="yes",
            smtp_helo_name="relay-a.example",
        )
        + smtp_service("svc_plain")
        # An address this machine does not have (TEST-NET-1): bind() fails locally; the
        # connection would still go to 127.0.0.1.
        + smtp_service(
            "svc_unbindable", smtp_bind_address="192.0.2.1", smtp_bind_address_enforce="yes"
        )
        + smtp_service("svc_lenient", smtp_bind_address="192.0.2.1"),
    )
    for rcpt, subject in [
        ("a@bound.test", "bound"),
        ("b@plain.test", "plain"),
        ("c@unbindable.test", "unbindable"),
        ("d@lenient.test", "lenient"),
    ]:
        assert postfix.send(SENDER, rcpt, subject) == {}
    got = {m.subject: m for m in sink.wait_for(3)}
    assert (got["bound"].peer, got["bound"].helo) == ("127.0.0.2", "relay-a.example")
    # Without them: the one inet_interfaces address, and $myhostname.
    assert (got["plain"].peer, got["plain"].helo) == ("127.0.0.1", "relayapi-test.localhost")
    # smtp_bind_address_enforce=yes: a source address that cannot be bound defers the mail...
    reason = deferred_reason(postfix, "c@unbindable.test")
    assert reason == "server configuration error"
    assert "bind 192.0.2.1: Cannot assign requested address" in postfix.log()
    # ...without it Postfix connects from the default address instead.
    assert got["lenient"].peer == "127.0.0.1"
    assert "unbindable" not in got
    print(f"\n(a) bound: peer {got['bound'].peer} helo {got['bound'].helo}; enforce: {reason!r}")


# --- (b) SASL --------------------------------------------------------------------------------


def test_sasl_over_starttls_with_encrypt(postfix, make_sink):
    sink = make_sink(credentials=("relay-user", "pass word:1"), starttls=True)
    passwords = postfix.write_map("sasl_passwd", {hop(sink): "relay-user:pass word:1"}, mode=0o600)
    path = passwords.split(":", 1)[1]
    transport = postfix.write_map(
        "transport",
        {"tls.test": f"svc_tls:{hop(sink)}", "tlsdefault.test": f"svc_tls_default:{hop(sink)}"},
    )
    sasl = {
        "smtp_sasl_auth_enable": "yes",
        "smtp_sasl_password_maps": passwords,
        "smtp_tls_security_level": "encrypt",
    }
    postfix.configure(
        main={"transport_maps": transport},
        master=smtp_service("svc_tls", **sasl, smtp_sasl_tls_security_options="noanonymous")
        # The same without smtp_sasl_tls_security_options: its default is
        # $smtp_sasl_security_options = noplaintext, noanonymous.
        + smtp_service("svc_tls_default", **sasl),
    )
    assert postfix.send(SENDER, "a@tls.test", "tls") == {}
    assert postfix.send(SENDER, "b@tlsdefault.test", "tls-default") == {}
    (message,) = sink.wait_for(1)
    assert message.tls
    assert (message.mechanism, message.login, message.password) == (
        "PLAIN",
        "relay-user",
        "pass word:1",
    )
    reason = deferred_reason(postfix, "b@tlsdefault.test")
    assert "no mechanism available" in reason, reason
    assert [m.subject for m in sink.received()] == ["tls"]
    # postmap gives the .db the mode of its source file.
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(path + ".db").st_mode & 0o777 == 0o600
    print(f"\n(b) over TLS: {message.mechanism} {message.login}; TLS default options: {reason!r}")


def test_sasl_without_tls(postfix, make_sink):
    sink = make_sink(credentials=("relay-user", "secret"))
    nexthop = hop(sink)
    good = postfix.write_map("sasl_good", {nexthop: "relay-user:secret"}, mode=0o600)
    bad = postfix.write_map("sasl_bad", {nexthop: "relay-user:wrong"}, mode=0o600)
    transport = postfix.write_map(
        "transport",
        {
            "plain.test": f"svc_plain:{nexthop}",
            "login.test": f"svc_login:{nexthop}",
            "wrong.test": f"svc_wrong:{nexthop}",
            "needtls.test": f"svc_needtls:{nexthop}",
        },
    )
    sasl = {"smtp_sasl_auth_enable": "yes", "smtp_sasl_security_options": "noanonymous"}
    postfix.configure(
        main={"transport_maps": transport},
        master=smtp_service("svc_plain", **sasl, smtp_sasl_password_maps=good)
        + smtp_service(
            "svc_login", **sasl, smtp_sasl_password_maps=good, smtp_sasl_mechanism_filter="login"
        )
        + smtp_service("svc_wrong", **sasl, smtp_sasl_password_maps=bad)
        + smtp_service(
            "svc_needtls", **sasl, smtp_sasl_password_maps=good, smtp_tls_security_level="encrypt"
        ),
    )
    for rcpt in ["a@plain.test", "b@login.test", "c@wrong.test", "d@needtls.test"]:
        assert postfix.send(SENDER, rcpt, rcpt.split("@")[1]) == {}
    got = {m.subject: m for m in sink.wait_for(2)}
    assert (got["plain.test"].mechanism, got["plain.test"].login, got["plain.test"].tls) == (
        "PLAIN",
        "relay-user",
        False,
    )
    assert (got["login.test"].mechanism, got["login.test"].password) == ("LOGIN", "secret")
    # A wrong password: the sink's 535 defers the mail (smtp_sasl_auth_soft_bounce=yes).
    wrong = deferred_reason(postfix, "c@wrong.test")
    assert "535" in wrong, wrong
    # encrypt against a server without STARTTLS: deferred, nothing sent in clear.
    needtls = deferred_reason(postfix, "d@needtls.test")
    assert "TLS is required, but was not offered" in needtls, needtls
    assert sorted(got) == ["login.test", "plain.test"]
    assert any(not a.success and a.password == "wrong" for a in sink.auth_attempts)
    print(f"\n(b) wrong password: {wrong!r}; encrypt without STARTTLS: {needtls!r}")


# --- (c) weighted routing, and what randmap caches --------------------------------------------


def test_randmap_weights_split_three_to_one(postfix, make_sink):
    a, b = make_sink(), make_sink()
    entry_a, entry_b = f"svc_a:{hop(a)}", f"svc_b:{hop(b)}"
    domains = postfix.write_map("domains", {"weighted.test": "x"})
    postfix.configure(
        main={
            "transport_maps": (
                f"pipemap:{{{domains}, randmap:{{{entry_a}, {entry_a}, {entry_a}, {entry_b}}}}}"
            )
        },
        master=smtp_service("svc_a") + smtp_service("svc_b"),
    )
    n = 200
    began = time.monotonic()
    refused = postfix.send_many([(SENDER, f"user{i}@weighted.test", f"w{i}") for i in range(n)])
    assert refused == {}
    wait_total([a, b], n)
    elapsed = time.monotonic() - began
    share = len(a.received()) / n
    assert len(a.received()) + len(b.received()) == n
    assert abs(share - 0.75) <= 0.08, share
    print(f"\n(c) {len(a.received())}:{len(b.received())} ({share:.1%} to svc_a) in {elapsed:.1f}s")


def test_randmap_choice_is_cached_for_a_repeated_recipient_and_for_the_wildcard(postfix, make_sink):
    a, b = make_sink(), make_sink()
    entry_a, entry_b = f"svc_a:{hop(a)}", f"svc_b:{hop(b)}"
    domains = postfix.write_map("domains", {"same.test": "x"})
    postfix.configure(
        main={
            "transport_maps": (
                f"pipemap:{{{domains}, randmap:{{{entry_a}, {entry_b}}}}}, "
                f"pipemap:{{inline:{{*=x}}, randmap:{{{entry_a}, {entry_b}}}}}"
            )
        },
        master=smtp_service("svc_a") + smtp_service("svc_b"),
    )
    n = 30
    # The same sender and recipient again and again: one resolve, reused (the resolver
    # client's cache of its last answer).
    postfix.send_many([(SENDER, "same@same.test", f"same{i}") for i in range(n)])
    wait_total([a, b], n)
    same = (len(a.received()), len(b.received()))
    assert sorted(same) == [0, n], same
    # Different recipients and senders through the `*` key: trivial-rewrite looks the
    # wildcard up once and keeps the answer for 30 s, so randmap picks once for all of them.
    postfix.send_many([(f"s{i}@sender.test", f"u{i}@d{i}.test", f"wild{i}") for i in range(n)])
    wait_total([a, b], 2 * n)
    wild = collections.Counter(
        {
            name: sum(m.subject.startswith("wild") for m in sink.received())
            for name, sink in (("svc_a", a), ("svc_b", b))
        }
    )
    assert sorted(wild.values()) == [0, n], wild
    print(f"\n(c) same recipient x{n}: {same}; `*` x{n}: {dict(wild)}")


def test_sender_dependent_default_transport_randmap_is_weighted_per_message(postfix, make_sink):
    """No `*`: sender_dependent_default_transport_maps = randmap (no lookup key restriction, no
    wildcard cache) routes every domain transport_maps does not name, per message."""
    a, b, listed = make_sink(), make_sink(), make_sink()
    entry_a, entry_b = f"svc_a:{hop(a)}", f"svc_b:{hop(b)}"
    transport = postfix.write_map("transport", {"listed.test": f"svc_listed:{hop(listed)}"})
    postfix.configure(
        main={
            "transport_maps": transport,
            "sender_dependent_default_transport_maps": (
                f"randmap:{{{entry_a}, {entry_a}, {entry_a}, {entry_b}}}"
            ),
        },
        master=smtp_service("svc_a") + smtp_service("svc_b") + smtp_service("svc_listed"),
    )
    n = 160
    messages = [(SENDER, f"u{i}@d{i}.test", f"any{i}") for i in range(n)]
    messages += [(SENDER, "x@listed.test", "listed"), ("", "y@null-sender.test", "null")]
    assert postfix.send_many(messages) == {}
    wait_total([a, b, listed], n + 2)
    assert [m.subject for m in listed.received()] == ["listed"]
    share = len(a.received()) / (n + 1)
    assert abs(share - 0.75) <= 0.10, share
    print(f"\n(c) sender_dependent_default_transport_maps: {share:.1%} to svc_a of {n + 1}")


# --- (d) transport_maps keys --------------------------------------------------------------------


def test_transport_map_key_matching_and_precedence(postfix, make_sink):
    sink = make_sink()
    names = [
        "r_exact",
        "r_sub",
        "r_star",
        "r_t1_parent",
        "r_t1_same",
        "r_t2_exact",
        "r_t2_same",
        "r_t2_late",
        "r_dom",
    ]
    master = "".join(
        smtp_service(name, smtp_helo_name=name.replace("_", "-") + ".example") for name in names
    )

    def route(name):
        return f"{name}:{hop(sink)}"

    first = postfix.write_map(
        "first",
        {
            "example.com": route("r_exact"),
            ".example.com": route("r_sub"),
            "*": route("r_star"),
            ".parent.test": route("r_t1_parent"),
            "same.test": route("r_t1_same"),
        },
    )
    second = postfix.write_map(
        "second",
        {
            "a.parent.test": route("r_t2_exact"),
            "same.test": route("r_t2_same"),
            "late.test": route("r_t2_late"),
        },
    )
    postfix.configure(main={"transport_maps": f"{first}, {second}"}, master=master)
    expected = {
        "example.com": "r-exact",  # `example.com`: that domain only
        "sub.example.com": "r-sub",  # `.example.com`: its subdomains...
        "deep.sub.example.com": "r-sub",  # ...at any depth
        "other.test": "r-star",  # `*`: any other domain
        "a.parent.test": "r-t2-exact",  # a later table's exact key beats an earlier `.parent`
        "b.parent.test": "r-t1-parent",
        "parent.test": "r-star",  # `.parent.test` does not match parent.test itself
        "same.test": "r-t1-same",  # the same key in two tables: the first table wins
        "late.test": "r-t2-late",  # a later table's domain key beats an earlier `*`
    }
    got = _route_all(postfix, sink, expected)
    assert got == expected

    # The compiler's shape: `*` through pipemap:{inline:{*=x}, ...} as the FIRST table still
    # loses to the domain keys of a later table.
    sink.messages.clear()
    keys = postfix.write_map("keys", {"late.test": "x", ".sub.test": "x"})
    postfix.configure(
        main={
            "transport_maps": (
                f"pipemap:{{inline:{{*=x}}, randmap:{{{route('r_star')}}}}}, "
                f"pipemap:{{{keys}, randmap:{{{route('r_dom')}}}}}"
            )
        },
        master=master,
    )
    expected = {
        "late.test": "r-dom",
        "a.sub.test": "r-dom",
        "sub.test": "r-star",
        "other.test": "r-star",
    }
    assert _route_all(postfix, sink, expected) == expected


def _route_all(postfix, sink, expected):
    for domain in expected:
        assert postfix.send(SENDER, f"user@{domain}", domain) == {}
    return {m.subject: m.helo.removesuffix(".example") for m in sink.wait_for(len(expected))}


# --- (e) retry: ------------------------------------------------------------------------------


def test_retry_transport_is_refused_at_rcpt_by_the_smtpd(postfix):
    transport = postfix.write_map(
        "transport",
        {
            "paused.test": "retry:4.3.2 delivery paused",
            "underscored.test": "retry:4.3.2_delivery_paused_ip_address_7",
        },
    )
    postfix.configure(main={"transport_maps": transport})
    refused = postfix.send(SENDER, "a@paused.test", "paused")
    assert refused == {
        "a@paused.test": (
            450,
            b"4.3.2 <a@paused.test>: Recipient address rejected: delivery paused",
        )
    }
    # No space, no DSN: the whole nexthop is the text, the code is the default 4.1.1.
    refused = postfix.send(SENDER, "b@underscored.test", "underscored")
    assert refused["b@underscored.test"] == (
        450,
        b"4.1.1 <b@underscored.test>: Recipient address rejected: "
        b"4.3.2_delivery_paused_ip_address_7",
    )
    assert postfix.queue() == []


def test_retry_transport_defers_queued_mail(postfix, make_sink):
    sink = make_sink()
    transport = postfix.write_map("transport", {"paused.test": "retry:4.3.2 delivery paused"})
    # smtpd_reject_unlisted_recipient = no stands for mail that was queued before the pause.
    main = {"transport_maps": transport, "smtpd_reject_unlisted_recipient": "no"}
    postfix.configure(main=main)
    start = len(postfix.log())
    assert postfix.send(SENDER, "a@paused.test", "paused") == {}
    assert deferred_reason(postfix, "a@paused.test") == "delivery paused"
    # It is retried (every second here) and stays deferred, never bounced.
    wait_until(
        lambda: postfix.log()[start:].count("dsn=4.3.2, status=deferred (delivery paused)") >= 3,
        10,
        message="three deferrals",
    )
    assert "status=bounced" not in postfix.log()[start:]
    (message,) = postfix.queue()
    assert message["queue_name"] == "deferred"
    # Unpaused (routed to a sink, reloaded, flushed): delivered.
    transport = postfix.write_map("transport", {"paused.test": f"svc_out:{hop(sink)}"})
    postfix.configure(main=main, master=smtp_service("svc_out"))
    postfix.flush()
    assert [m.subject for m in sink.wait_for(1)] == ["paused"]
    postfix.wait_queue_empty()


# --- (f) destination concurrency -------------------------------------------------------------


def _concurrency_run(postfix, make_sink, count, data_delay=1.0, **params):
    sink = make_sink(data_delay=data_delay)
    transport = postfix.write_map("transport", {"c.test": f"svc_c:{hop(sink)}"})
    main = {"transport_maps": transport}
    main.update({f"svc_c_{name}": str(value) for name, value in params.items()})
    postfix.configure(main=main, master=smtp_service("svc_c"))
    began = time.monotonic()
    assert postfix.send_many([(SENDER, f"u{i}@c.test", f"c{i}") for i in range(count)]) == {}
    sink.wait_for(count, timeout=40)
    return sink.max_concurrent, time.monotonic() - began


def test_destination_concurrency_limit_two(postfix, make_sink):
    peak, elapsed = _concurrency_run(
        postfix, make_sink, 10, data_delay=0.6, destination_concurrency_limit=2
    )
    assert peak == 2
    assert elapsed >= 5 * 0.6  # 10 transactions of 0.6 s, two at a time
    print(f"\n(f) limit 2: peak {peak}, 10 messages in {elapsed:.1f}s")


def test_destination_concurrency_limit_zero_is_unlimited_and_omitted_is_twenty(postfix, make_sink):
    # With the initial concurrency at 30 the window starts at 30, capped by the limit.
    unlimited, t0 = _concurrency_run(
        postfix,
        make_sink,
        30,
        destination_concurrency_limit=0,
        initial_destination_concurrency=30,
    )
    default, t1 = _concurrency_run(postfix, make_sink, 30, initial_destination_concurrency=30)
    # (30 and 20 exactly on an idle machine; a busy one may start the processes too slowly
    # for all of them to overlap.)
    assert unlimited > 20
    assert default <= 20  # default_destination_concurrency_limit
    print(f"\n(f) limit 0: peak {unlimited} ({t0:.1f}s); omitted: peak {default} ({t1:.1f}s)")


# --- (g) destination rate delay --------------------------------------------------------------


def _gaps(times):
    return [round(b - a, 2) for a, b in itertools.pairwise(times)]


def test_destination_rate_delay_one_per_second(postfix, make_sink):
    sink = make_sink()
    transport = postfix.write_map("transport", {"r.test": f"svc_r:{hop(sink)}"})
    postfix.configure(
        main={"transport_maps": transport, "svc_r_destination_rate_delay": "1s"},
        master=smtp_service("svc_r"),
    )
    n = 4
    postfix.send_many([(SENDER, f"u{i}@r.test", f"r{i}") for i in range(n)])
    gaps = _gaps([m.arrived for m in sink.wait_for(n)])
    assert all(0.9 <= gap <= 1.6 for gap in gaps), gaps
    assert sink.max_concurrent == 1
    print(f"\n(g) one service, rate delay 1s: gaps {gaps}")


def test_two_rate_limited_copies_to_one_nexthop_double_the_rate(postfix, make_sink):
    sink = make_sink()
    domains = postfix.write_map("domains", {"r2.test": "x"})
    postfix.configure(
        main={
            "transport_maps": (
                f"pipemap:{{{domains}, randmap:{{svc_a1:{hop(sink)}, svc_a2:{hop(sink)}}}}}"
            ),
            "svc_a1_destination_rate_delay": "1s",
            "svc_a2_destination_rate_delay": "1s",
        },
        master=smtp_service("svc_a1", smtp_helo_name="a1.example")
        + smtp_service("svc_a2", smtp_helo_name="a2.example"),
    )
    n = 8
    postfix.send_many([(SENDER, f"u{i}@r2.test", f"r2-{i}") for i in range(n)])
    messages = sink.wait_for(n)
    per_copy = {
        h: [m.arrived for m in messages if m.helo == h] for h in ("a1.example", "a2.example")
    }
    for times in per_copy.values():
        assert all(gap >= 0.9 for gap in _gaps(times)), _gaps(times)
    # The copies run side by side: the whole run takes as long as the busier copy alone.
    span = messages[-1].arrived - messages[0].arrived
    busier = max(len(times) for times in per_copy.values())
    assert span <= busier - 1 + 0.8, (span, busier)
    assert sink.max_concurrent <= 2
    print(
        f"\n(g) two copies: split {[len(t) for t in per_copy.values()]}, {n} messages in "
        f"{span:.2f}s = {(n - 1) / span:.2f}/s"
    )


# --- (h) broken configurations -----------------------------------------------------------------


def test_postfix_check_catches_syntax_not_semantics(postfix):
    good = smtp_service("svc_ok")
    cases = {
        "good": {"master": good},
        "master.cf bad type field": {"master": good + "svc_bad inett - - n - - smtp\n"},
        "master.cf bad field count": {"master": good + "svc_bad unix - - n\n"},
        "master.cf unknown -o parameter": {
            "master": good + smtp_service("svc_typo", smtp_bind_adress="127.0.0.2")
        },
        "master.cf unknown command flag": {"master": good + "svc_flag unix - - n - - smtp -Z\n"},
        "master.cf unknown daemon": {"master": good + "svc_x unix - - n - - no-such-daemon\n"},
        "transport_maps missing table": {
            "main": {"transport_maps": "hash:/nonexistent/transport"},
            "master": good,
        },
        "main.cf line without =": {"master": good, "main_tail": "this line has no equals sign\n"},
    }
    # Each in a scratch config directory of its own, all at once (a failing check takes ~2 s).
    with ThreadPoolExecutor(len(cases)) as pool:
        futures = {
            label: pool.submit(postfix.check_config, **case) for label, case in cases.items()
        }
        results = {label: future.result() for label, future in futures.items()}
    codes = {label: result.returncode for label, result in results.items()}
    assert codes == {
        "good": 0,
        "master.cf bad type field": 1,
        "master.cf bad field count": 1,
        "master.cf unknown -o parameter": 0,
        "master.cf unknown command flag": 0,
        "master.cf unknown daemon": 0,
        "transport_maps missing table": 0,
        "main.cf line without =": 1,
    }
    assert 'invalid type field "inett"' in results["master.cf bad type field"].stderr
    assert "bad field count" in results["master.cf bad field count"].stderr
    # Only a warning on stderr (repeated by each postconf run), exit 0:
    assert "unused parameter: smtp_bind_adress=127.0.0.2" in (
        results["master.cf unknown -o parameter"].stderr
    )
    # The postfix command's own messages go to stderr only on a terminal (else to the log):
    # for a broken main.cf the exit code alone tells.
    assert results["main.cf line without ="].stderr == ""
    # What does catch a missing table: a lookup in it.
    lookup = postfix.postmap("-q", "x", "pipemap:{hash:/nonexistent/t, randmap:{a}}", check=False)
    assert lookup.returncode == 1
    assert "open database /nonexistent/t.db" in lookup.stderr
    for label, result in results.items():
        print(f"\n(h) check, {label}: exit {result.returncode} {result.stderr.splitlines()[:1]}")


def test_reload_after_a_broken_configuration(postfix, make_sink):
    sink = make_sink()
    transport = postfix.write_map("transport", {"ok.test": f"svc_ok:{hop(sink)}"})

    def service(helo):
        return smtp_service("svc_ok", smtp_helo_name=helo)

    def deliver(subject):
        count = len(sink.received())
        refused = postfix.send(SENDER, "u@ok.test", subject)
        if refused:
            return refused
        return sink.wait_for(count + 1)[-1].helo

    postfix.configure(main={"transport_maps": transport}, master=service("old.example"))
    assert deliver("before") == "old.example"

    # A master.cf syntax error: `postfix reload` refuses (its postconf run fails), sends no
    # signal; the running instance keeps the old configuration.
    postfix.configure(
        main={"transport_maps": transport},
        master=service("new.example") + "svc_bad inett - - n - - smtp\n",
        reload=False,
    )
    reload = postfix.postfix("reload", check=False)
    assert reload.returncode == 1
    assert "invalid type field" in reload.stderr
    assert postfix.is_running()
    assert deliver("after master.cf error") == "old.example"

    # A main.cf syntax error: the postfix command itself fails, same outcome.
    postfix.configure(
        main={"transport_maps": transport}, master=service("new.example"), reload=False
    )
    with open(postfix.config_dir / "main.cf", "a") as main_cf:
        main_cf.write("this line has no equals sign\n")
    past = time.time() - 5
    os.utime(postfix.config_dir / "main.cf", (past, past))
    assert postfix.postfix("reload", check=False).returncode == 1
    assert postfix.is_running()
    assert deliver("after main.cf error") == "old.example"

    # A missing table passes every check and the reload: then every lookup fails, and the
    # smtpd answers 451 for all recipients (mail that is queued waits).
    postfix.configure(
        main={"transport_maps": f"{transport}, hash:/nonexistent/transport"},
        master=service("new.example"),
    )
    assert postfix.is_running()
    assert deliver("missing table") == {
        "u@ok.test": (451, b"4.3.0 <u@ok.test>: Temporary lookup failure")
    }

    # An unknown daemon flag passes too: the service's processes die at start, the master
    # throttles it, and its mail waits in the queue.
    start = len(postfix.log())
    flagged = postfix.write_map("flagged", {"ok.test": f"svc_flag:{hop(sink)}"})
    postfix.configure(
        main={"transport_maps": flagged},
        master=service("new.example") + "svc_flag unix - - n - - smtp -Z\n",
    )
    assert postfix.send(SENDER, "u@ok.test", "flagged") == {}
    postfix.wait_for_log(r"bad command startup -- throttling", start=start)
    assert [m["recipients"][0]["address"] for m in postfix.queue()] == ["u@ok.test"]
    assert "flagged" not in [m.subject for m in sink.received()]

    # A bare SIGHUP (not `postfix reload`) with a broken master.cf: the master exits, and the
    # whole instance with it.
    postfix.configure(
        main={"transport_maps": transport},
        master=service("new.example") + "svc_bad inett - - n - - smtp\n",
        reload=False,
    )
    os.kill(postfix.master_pid(), signal.SIGHUP)
    wait_until(lambda: not postfix.is_running(), 10, message="the master to exit")
    # (The next test's reset starts the instance again.)
