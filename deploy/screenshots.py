"""Regenerate the README's screenshots of the admin (`make screenshots`).

    docs/screenshots/relay-list.png     the relay server list
    docs/screenshots/relay-change.png   a relay server's change page (full page)
    docs/screenshots/routing-rule.png   a routing rule's change page (full page)

Everything runs on this machine and is thrown away afterwards: a SQLite database in a temporary
directory, migrated and filled with demo data through the two APIs (GreenArrow for the IP
addresses, relay servers and the routing rule; Mail Manager via boto3 for Secret ARNs and tags),
served by gunicorn with the production settings (deploy/gunicorn.conf.py) on 127.0.0.1, and shot
by Debian's headless Chromium (/usr/bin/chromium, never `playwright install`) at 1400 pixels
wide, logged in as a superuser made for the occasion.

    .venv/bin/python deploy/screenshots.py [--output-dir DIR]
"""

import argparse
import base64
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
from botocore.config import Config
from chromium import CHROMIUM, launch
from cryptography.fernet import Fernet
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
VIEWPORT = {"width": 1400, "height": 1000}
START_TIMEOUT = 60
# Straight to the throwaway server on loopback, whatever proxy the environment names.
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# The admin's navigation sidebar opens or collapses as the browser's local storage says (the
# state its own toggle button remembers); set before a page loads.
SIDEBAR_OPEN = "open => localStorage.setItem('django.admin.navSidebarIsOpen', open)"
USERNAME = "admin"
REGION = "us-east-1"
# Settings of the caller's environment that would change what the throwaway server does.
CLEARED = [
    "DATABASE_POOL",
    "RELAYAPI_MAX_RELAYS",
    "SECURE_SSL_REDIRECT",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER",
    "USE_X_FORWARDED_HOST",
    "CSRF_TRUSTED_ORIGINS",
    "ACCESS_KEY_ENCRYPTION_KEY",
    "MAILMANAGER_REGION",
    "MAILMANAGER_ACCOUNT",
    "GUNICORN_CONTROL_SOCKET",
]

# --- demo data --------------------------------------------------------------------------------

# (name, ip, HELO hostname, paused)
IP_ADDRESSES = [
    ("mta-ash-01", "198.51.100.10", "mta1.ash.mail.example.com", False),
    ("mta-ash-02", "198.51.100.11", "mta2.ash.mail.example.com", False),
    ("mta-fra-01", "203.0.113.20", "mta1.fra.mail.example.com", False),
    ("mta-fra-02", "203.0.113.21", "mta2.fra.mail.example.com", True),
]

ASH = ("198.51.100.10", "mta1.ash.mail.example.com")
ASH2 = ("198.51.100.11", "mta2.ash.mail.example.com")
FRA = ("203.0.113.20", "mta1.fra.mail.example.com")

# (name, (source ip, HELO), destination host, port, username or None, (connections, per hour))
RELAYS = [
    ("postmark-tx-01", ASH, "smtp.postmarkapp.com", 587, "pm-server-token", (20, 36000)),
    ("postmark-tx-02", ASH2, "smtp.postmarkapp.com", 587, "pm-server-token", (20, 36000)),
    ("postmark-bulk-01", ASH, "smtp-broadcasts.postmarkapp.com", 587, "pm-bulk", (10, 20000)),
    ("sendgrid-us-01", ASH, "smtp.sendgrid.net", 587, "apikey", (30, 60000)),
    ("sendgrid-us-02", ASH2, "smtp.sendgrid.net", 587, "apikey", (30, 60000)),
    ("sendgrid-eu-01", FRA, "smtp.eu.sendgrid.net", 587, "apikey", (15, 30000)),
    ("mailgun-us-01", ASH, "smtp.mailgun.org", 587, "postmaster@mg.example.com", (25, 50000)),
    ("mailgun-eu-01", FRA, "smtp.eu.mailgun.org", 587, "postmaster@eu.example.com", (25, 50000)),
    ("sparkpost-01", ASH, "smtp.sparkpostmail.com", 587, "SMTP_Injection", (20, 40000)),
    ("ses-us-east-1", ASH, "email-smtp.us-east-1.amazonaws.com", 587, None, (50, 100000)),
    ("ses-eu-west-1", FRA, "email-smtp.eu-west-1.amazonaws.com", 587, None, (50, 100000)),
    ("ses-ap-south-1", ASH2, "email-smtp.ap-south-1.amazonaws.com", 587, None, (10, 14000)),
    ("m365-smarthost", ASH, "example-com.mail.protection.outlook.com", 25, None, (8, 0)),
    ("gws-smtp-relay", ASH2, "smtp-relay.gmail.com", 587, None, (10, 10000)),
    ("mandrill-01", ASH, "smtp.mandrillapp.com", 587, "ops@example.com", (10, 20000)),
    ("brevo-01", FRA, "smtp-relay.brevo.com", 587, "relay@example.com", (10, 15000)),
    ("socketlabs-01", ASH2, "smtp.socketlabs.com", 2525, "server-38211", (5, 12000)),
    ("smtp2go-01", FRA, "mail.smtp2go.com", 2525, "relay-fra", (5, 6000)),
    ("mailjet-eu-01", FRA, "in-v3.mailjet.com", 587, "mj-public-key", (10, 20000)),
    ("elastic-email-01", ASH, "smtp.elasticemail.com", 2525, "relay@example.com", (5, 5000)),
    ("zoho-eu-01", FRA, "smtppro.zoho.eu", 587, "notifications@example.eu", (2, 1000)),
    ("fastmail-relay", ASH2, "smtp.fastmail.com", 587, "alerts@example.com", (2, 500)),
    ("internal-mx-ash", ASH, "mx-in.ash.example.com", 25, None, (0, 0)),
    ("internal-mx-fra", FRA, "mx-in.fra.example.com", 25, None, (0, 0)),
    ("legacy-exchange", ASH2, "exch01.corp.example.com", 25, None, (4, 0)),
    ("backup-relay-01", ASH, "relay-b1.example.net", 2525, "backup", (5, 2000)),
    ("backup-relay-02", FRA, "relay-b2.example.net", 2525, "backup", (5, 2000)),
    ("partner-acme", ASH2, "smtp.acme.example", 465, "example-relay", (3, 1200)),
    ("partner-globex", FRA, "mail.globex.example", 587, "example-relay", (3, 1200)),
    ("warmup-pool-01", ASH2, "smtp.sendgrid.net", 587, "apikey", (2, 250)),
]

# relay -> the VirtualMTA it redirects to
REDIRECTS = {
    "postmark-bulk-01": "postmark-tx-01",
    "backup-relay-01": "sendgrid-us-01",
    "backup-relay-02": "sendgrid-eu-01",
    "legacy-exchange": "m365-smarthost",
    "warmup-pool-01": "mta-ash-02",
}

# relays whose SMTP credentials are in AWS Secrets Manager (set through Mail Manager)
SECRET_ARNS = {
    "ses-us-east-1": "arn:aws:secretsmanager:us-east-1:123456789012:secret:smtp/ses-us-east-1-Q1w2E3",
    "ses-eu-west-1": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:smtp/ses-eu-west-1-R4t5Y6",
    "ses-ap-south-1": "arn:aws:secretsmanager:ap-south-1:123456789012:secret:smtp/ses-ap-1-U7i8O9",
}

SHOWN_RELAY = "postmark-tx-01"
TAGS = [
    {"Key": "team", "Value": "transactional"},
    {"Key": "environment", "Value": "production"},
    {"Key": "cost-center", "Value": "cc-4120"},
]


def target(name, portion):
    return {"virtual_mta": {"name": name}, "portion_of_mail": portion}


ROUTING_RULE = {
    "name": "transactional",
    "default": {
        "randomization_type": "random",
        "deliver_through": [
            target("postmark-tx-01", 50),
            target("sendgrid-us-01", 30),
            target("mailgun-us-01", 20),
        ],
    },
    "domain_overrides": [
        {
            "domains": ["gmail.com", "googlemail.com"],
            "randomization_type": "message_constant",
            "deliver_through": [target("ses-us-east-1", 60), target("sendgrid-us-02", 40)],
        },
        {
            "domains": ["[*.]gmx.de", "web.de", "t-online.de"],
            "randomization_type": "email_address_constant",
            "deliver_through": [target("mailgun-eu-01", 70), target("sendgrid-eu-01", 30)],
        },
    ],
}

# --- the throwaway server ---------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_environment(workdir, port):
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        RELAYAPI_ENCRYPTION_KEY=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=f"sqlite:///{workdir / 'relayapi.sqlite3'}",
        RELAYAPI_VAR_DIR=str(workdir),
        STATIC_ROOT=str(workdir / "static"),
        BIND=f"127.0.0.1:{port}",
        WEB_CONCURRENCY="2",
        LOG_LEVEL="WARNING",
        DJANGO_SUPERUSER_USERNAME=USERNAME,
        DJANGO_SUPERUSER_PASSWORD=secrets.token_urlsafe(16),
        DJANGO_SUPERUSER_EMAIL="admin@example.com",
    )
    return env


def manage(env, *args):
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode:
        sys.exit(f"screenshots: manage.py {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def wait_until_up(server, url, log):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"screenshots: gunicorn exited ({server.returncode}):\n{log.read_text()}")
        try:
            with DIRECT.open(f"{url}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    sys.exit(f"screenshots: the server did not answer within {START_TIMEOUT}s:\n{log.read_text()}")


def stop(server):
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# --- seeding through the APIs -----------------------------------------------------------------


class GreenArrow:
    def __init__(self, url, username, password):
        self.base = f"{url}/ga/api/v3/eng"
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}", "Content-Type": "application/json"}

    def call(self, method, path, body=None):
        request = urllib.request.Request(
            self.base + path,
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers=self.headers,
        )
        try:
            with DIRECT.open(request, timeout=30) as answer:
                return json.load(answer)["data"]
        except urllib.error.HTTPError as error:
            sys.exit(f"screenshots: {method} {path} -> {error.code}: {error.read().decode()}")

    def create(self, kind, record):
        plural = f"{kind}s" if kind != "ip_address" else "ip_addresses"
        return self.call("POST", f"/{plural}", {kind: record})[kind]


def seed(url, env):
    ga = GreenArrow(url, USERNAME, env["DJANGO_SUPERUSER_PASSWORD"])
    for name, ip, hostname, paused in IP_ADDRESSES:
        ga.create(
            "ip_address",
            {"name": name, "ip": ip, "hostname": hostname, "delivery_paused": paused},
        )
    for name, (source_ip, helo), host, port, username, (connections, hourly) in RELAYS:
        destination = {"hostname": host, "port": port}
        if username is not None:
            destination.update(username=username, password=secrets.token_urlsafe(24))
        record = {
            "name": name,
            "source_ip": {"ip": source_ip, "hostname": helo},
            "destination": destination,
            "throttle_limits": {
                "max_concurrent_connections": connections,
                "max_messages_per_hour": hourly,
            },
        }
        if name in REDIRECTS:
            record["redirect"] = {"name": REDIRECTS[name]}
        ga.create("relay_server", record)
    rule = ga.create("routing_rule", ROUTING_RULE)

    key = json.loads(manage(env, "create_access_key", USERNAME))
    mm = boto3.client(
        "mailmanager",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
        config=Config(retries={"max_attempts": 1, "mode": "standard"}),
    )
    relay_ids = {
        relay["RelayName"]: relay["RelayId"]
        for page in mm.get_paginator("list_relays").paginate()
        for relay in page["Relays"]
    }
    for name, arn in SECRET_ARNS.items():
        mm.update_relay(RelayId=relay_ids[name], Authentication={"SecretArn": arn})
    shown = mm.get_relay(RelayId=relay_ids[SHOWN_RELAY])
    mm.tag_resource(ResourceArn=shown["RelayArn"], Tags=TAGS)

    listing = ga.call("GET", "/relay_servers")["relay_servers"]
    shown_id = next(r["id"] for r in listing if r["name"] == SHOWN_RELAY)
    return shown_id, rule["id"]


# --- the screenshots ----------------------------------------------------------------------------


def shoot(url, password, relay_id, rule_id, output):
    output.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            context = browser.new_context(base_url=url, viewport=VIEWPORT)
            context.set_default_timeout(15_000)
            page = context.new_page()
            page.goto("/admin/login/?next=/admin/")
            page.get_by_label("Username").fill(USERNAME)
            page.get_by_label("Password").fill(password)
            page.get_by_role("button", name="Log in").click()
            expect(page.locator("#user-tools")).to_contain_text(USERNAME)

            # (file, page, what shows once it is there, whole page, navigation sidebar)
            shots = [
                (
                    "relay-change.png",
                    f"/admin/relays/relayserver/{relay_id}/change/",
                    "form",
                    True,
                    True,
                ),
                (
                    "routing-rule.png",
                    f"/admin/relays/routingrule/{rule_id}/change/",
                    "form",
                    True,
                    True,
                ),
                # The list's columns need the width: the navigation sidebar collapsed.
                ("relay-list.png", "/admin/relays/relayserver/", "#result_list", False, False),
            ]
            for filename, path, ready, full_page, sidebar in shots:
                page.evaluate(SIDEBAR_OPEN, "true" if sidebar else "false")
                answer = page.goto(path)
                if answer is None or answer.status != 200:
                    sys.exit(f"screenshots: {path} answered {answer and answer.status}")
                expect(page.locator(ready).first).to_be_visible()
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(output / filename), full_page=full_page)
                print(f"screenshots: wrote {output / filename}")
        finally:
            browser.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    if not os.access(CHROMIUM, os.X_OK):
        sys.exit(f"screenshots: {CHROMIUM} is missing: install Debian's chromium package")

    workdir = Path(tempfile.mkdtemp(prefix="relayapi-screenshots-"))
    server = None
    try:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = server_environment(workdir, port)
        manage(env, "migrate", "--noinput")
        manage(env, "collectstatic", "--noinput", "--verbosity", "0")
        manage(env, "createsuperuser", "--noinput")
        log = workdir / "gunicorn.log"
        with log.open("w") as log_file:
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "-c",
                    "deploy/gunicorn.conf.py",
                    "relayapi.wsgi",
                ],
                cwd=ROOT,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        wait_until_up(server, url, log)
        relay_id, rule_id = seed(url, env)
        shoot(url, env["DJANGO_SUPERUSER_PASSWORD"], relay_id, rule_id, args.output_dir.resolve())
    finally:
        if server is not None:
            stop(server)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
