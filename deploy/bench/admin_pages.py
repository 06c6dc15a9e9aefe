"""The admin's pages at 100,000 relay servers (`make bench-admin`): how long each takes and how
many queries it runs, against a floor measured in the same run.

    .venv/bin/python deploy/bench/admin_pages.py        # BENCH_RELAYS (100000), BENCH_ROUNDS (20)

A throwaway PostgreSQL (deploy/pg-temp.sh), migrated and seeded by seed.py, a few IP addresses
and routing rules, and one relay that 1,000 others redirect to (a hub). Each page is rendered
in this process by Django's test client, logged in as a superuser, with the production settings
(DEBUG off), so a figure is the server's own time: no network, no browser. The floor is
`GET /healthz` through the same client. Prints a Markdown table.
"""

import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

RELAYS = int(os.environ.get("BENCH_RELAYS", "100000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "20"))
HUB_REFERRERS = 1000


def environment(database_url, tmp):
    from cryptography.fernet import Fernet

    os.environ.update(
        DJANGO_SETTINGS_MODULE="relayapi.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        RELAYAPI_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="testserver",
        DATABASE_URL=database_url,
        RELAYAPI_VAR_DIR=str(tmp),
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("RELAYAPI_MAX_RELAYS", None)


def fill(seeded):
    """IP addresses, routing rules over seeded relays, and a hub with many referrers."""
    from relays import services
    from relays.models import IpAddress, RoutingRule, VirtualMta

    def ref(pk):
        return {"id": pk, "name": None}

    first, last = seeded["first_id"], seeded["last_id"]
    for n in range(4):
        services.create_virtual_mta(
            IpAddress,
            {
                "name": f"ip-{n}",
                "ip": f"192.0.2.{n + 1}",
                "hostname": f"mta{n}.example.com",
                "delivery_paused": n == 0,
                "max_concurrent_connections": 0,
                "max_messages_per_hour": 0,
            },
        )
    rule = services.create_virtual_mta(
        RoutingRule,
        {
            "name": "rule-0",
            "default_randomization_type": "random",
            "default_deliver_through": [
                {"virtual_mta": ref(first + i), "portion_of_mail": i + 1} for i in range(3)
            ],
            "domain_overrides": [
                {
                    "domain_list": [f"d{o}.example.com", f"[*.]e{o}.example.org"],
                    "randomization_type": "random",
                    "deliver_through": [{"virtual_mta": ref(first + 10 + o), "portion_of_mail": 1}],
                }
                for o in range(5)
            ],
        },
    )
    hub = (first + last) // 2
    VirtualMta.objects.filter(pk__gt=hub, pk__lte=hub + HUB_REFERRERS).update(redirect_id=hub)
    return {"hub": hub, "rule": rule.pk, "relay": first + 1}


def measure(client, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    response = client.get(url)  # warm
    assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(ROUNDS):
        began = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - began) * 1000)
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], len(captured)


def main():
    with tempfile.TemporaryDirectory(prefix="relayapi-bench-admin-") as tmp:
        tmp = Path(tmp)
        # Its own directory in /tmp: PostgreSQL runs as `postgres`, who cannot enter `tmp`.
        pg_dir = Path(tempfile.mkdtemp(prefix="relayapi-bench-pg-"))
        url = (
            subprocess.run(
                [ROOT / "deploy/pg-temp.sh", "start", pg_dir],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        try:
            environment(url, tmp)
            run(tmp)
        finally:
            subprocess.run([ROOT / "deploy/pg-temp.sh", "stop", pg_dir], capture_output=True)


def run(tmp):
    import django

    django.setup()
    import seed
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)  # the admin's pages name them
    print(f"seeding {RELAYS} relay servers ...", file=sys.stderr)
    seeded = seed.seed(RELAYS)
    ids = fill(seeded)
    user = get_user_model().objects.create_superuser("bench", "bench@example.com", "x")
    client = Client()
    client.force_login(user)

    deep = max(1, RELAYS // 200)  # halfway (100 a page)
    pages = [
        ("floor: GET /healthz", "/healthz"),
        ("relay list, page 1", "/admin/relays/relayserver/"),
        (f"relay list, page {deep}", f"/admin/relays/relayserver/?p={deep}"),
        ("relay list, search by source IP", "/admin/relays/relayserver/?q=10.0.195.80"),
        ("relay list, search by name", "/admin/relays/relayserver/?q=bench-relay-77777"),
        (
            "relay list, filter stored credentials",
            "/admin/relays/relayserver/?authentication=stored",
        ),
        ("relay list, filter throttled", "/admin/relays/relayserver/?throttled=yes"),
        ("relay page", f"/admin/relays/relayserver/{ids['relay']}/change/"),
        (
            f"relay page, a hub ({HUB_REFERRERS} referrers)",
            f"/admin/relays/relayserver/{ids['hub']}/change/",
        ),
        ("IP address list", "/admin/relays/ipaddress/"),
        ("routing rule list", "/admin/relays/routingrule/"),
        ("routing rule editor (5 overrides)", f"/admin/relays/routingrule/{ids['rule']}/change/"),
        (
            "VirtualMTA picker search",
            "/admin/relays/virtualmta/search/?term=bench-relay-5&app_label=relays"
            "&model_name=virtualmta&field_name=redirect",
        ),
        ("admin home", "/admin/"),
    ]
    results = [(name, *measure(client, url)) for name, url in pages]
    floor = results[0][1]
    print(f"\nAdmin pages at {RELAYS:,} relay servers (PostgreSQL, in-process, {ROUNDS} rounds)\n")
    print("| page | median ms | p95 ms | x floor | queries |")
    print("|---|---:|---:|---:|---:|")
    for name, median, p95, queries in results:
        print(f"| {name} | {median:.1f} | {p95:.1f} | {median / floor:.1f} | {queries} |")


if __name__ == "__main__":
    main()
