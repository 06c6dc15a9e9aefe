"""The production path: nginx (TLS, deploy/nginx/) in front of gunicorn started by
deploy/entrypoint.sh on a Unix socket, DEBUG off, on PostgreSQL; every request here goes through
nginx, but for the few that show what reaching the app server directly is like."""

import contextlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.nginx.loopback import render_site, self_signed_certificate
from tests.e2e.conftest import (
    Process,
    app_env,
    basic,
    create_access_key,
    create_superuser,
    free_port,
    log_lines,
    mailmanager,
    nginx_binary,
    request,
    start_app_server,
    tls_context,
)

pytestmark = pytest.mark.postgresql

HEX_ID = re.compile(r"[0-9a-f]{32}")

# The server-wide part a distribution's nginx.conf holds, kept inside the test's directory.
NGINX_CONF = """\
{user}
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 256;
}}
http {{
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    access_log off;
    include {dir}/relayapi.conf;
}}
"""


@dataclass
class Stack:
    url: str  # nginx, https
    http_url: str  # nginx, plain http
    tls: object
    app: Process
    nginx: Process
    cert: Path
    username: str
    password: str
    access_key: dict
    relay_id: int

    def get(self, path, **headers):
        return request(f"{self.url}{path}", headers=headers, ssl_context=self.tls)

    def lines_for(self, request_id):
        return [line for line in log_lines(self.app) if line.get("request_id") == request_id]


@pytest.fixture(scope="module")
def stack(database_url, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nginx")
    https_port, http_port = free_port(), free_port()
    url = f"https://127.0.0.1:{https_port}"
    app_socket = tmp / "gunicorn.sock"
    # The production settings the README asks for behind this proxy, on its socket.
    env = app_env(
        database_url,
        tmp / "var",
        CSRF_TRUSTED_ORIGINS=url,
        SECURE_PROXY_SSL_HEADER="1",
        USE_X_FORWARDED_HOST="1",
        RELAYAPI_TRUST_REQUEST_ID="1",
        RELAYAPI_TRUSTED_PROXIES="unix",
        SECURE_SSL_REDIRECT="1",
        SESSION_COOKIE_SECURE="1",
        CSRF_COOKIE_SECURE="1",
        SECURE_HSTS_SECONDS="31536000",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="1",
        SECURE_HSTS_PRELOAD="1",
    )
    with contextlib.ExitStack() as running:
        app = start_app_server("gunicorn", env, None, tmp, unix_socket=app_socket)
        running.callback(app.stop)

        cert, key = self_signed_certificate(tmp)
        nginx_dir = tmp / "nginx"
        nginx_dir.mkdir()
        (nginx_dir / "relayapi.conf").write_text(
            render_site(
                {
                    "RELAYAPI_SERVER_NAME": "127.0.0.1",
                    "RELAYAPI_HTTPS_LISTEN": f"127.0.0.1:{https_port} ssl",
                    "RELAYAPI_HTTP_LISTEN": f"127.0.0.1:{http_port}",
                    "RELAYAPI_UPSTREAM": f"unix:{app_socket}",
                    "RELAYAPI_TLS_CERTIFICATE": str(cert),
                    "RELAYAPI_TLS_CERTIFICATE_KEY": str(key),
                    "RELAYAPI_NGINX_LOG_DIR": str(nginx_dir),
                }
            )
        )
        # Run as root, nginx's workers would otherwise be `nobody`, who may not enter the
        # test's private temporary directory.
        user = "user root;" if os.geteuid() == 0 else ""
        conf = nginx_dir / "nginx.conf"
        conf.write_text(NGINX_CONF.format(user=user, dir=nginx_dir))
        nginx = Process(
            "nginx",
            [nginx_binary(), "-p", nginx_dir, "-c", conf, "-e", nginx_dir / "error.log"],
            tmp / "nginx.log",
        )
        running.callback(nginx.stop)
        tls = tls_context(cert)
        nginx.wait_until_answering(f"{url}/healthz", ssl_context=tls)

        username, password = create_superuser(env)
        access_key = create_access_key(env, username)
        created = request(
            f"{url}/ga/api/v3/eng/relay_servers",
            "POST",
            body=RELAY,
            headers={**basic(username, password), "Content-Type": "application/json"},
            ssl_context=tls,
        )
        assert created.status == 200, created.body
        yield Stack(
            url=url,
            http_url=f"http://127.0.0.1:{http_port}",
            tls=tls,
            app=app,
            nginx=nginx,
            cert=cert,
            username=username,
            password=password,
            access_key=access_key,
            relay_id=created.json()["data"]["relay_server"]["id"],
        )


RELAY = b"""{"relay_server": {
    "name": "via-nginx",
    "source_ip": {"ip": "127.0.0.2", "hostname": "out.example.com"},
    "destination": {"hostname": "smtp.example.com", "port": 587},
    "throttle_limits": {"max_concurrent_connections": 2, "max_messages_per_hour": 120}}}"""


def test_gunicorn_listens_on_a_socket_only_its_owner_and_group_may_open(stack):
    mode = os.stat(stack.app.socket).st_mode

    assert stat.S_ISSOCK(mode)
    assert oct(stat.S_IMODE(mode)) == "0o660"


def test_over_the_socket_the_app_believes_nginx_and_only_nginx_names_the_client(stack):
    # The client's own X-Forwarded-For is replaced by nginx ($remote_addr); the app reads the
    # socket's header, so the log names the real client, not the forged address nor "none".
    answer = stack.get("/healthz", **{"X-Forwarded-For": "192.0.2.66"})

    [line] = stack.lines_for(answer.headers["X-Request-Id"])
    assert line["remote_addr"] == "127.0.0.1"


def test_health_endpoints_answer_through_nginx(stack):
    assert stack.get("/healthz").json() == {"status": "ok"}
    assert stack.get("/readyz").json() == {"status": "ok"}


def test_the_admin_login_page_and_its_static_files_are_served(stack):
    page = stack.get("/admin/login/")
    stylesheet = stack.get("/static/admin/css/base.css")

    assert page.status == 200
    assert b'href="/static/admin/css/base.css"' in page.body
    assert stylesheet.status == 200
    assert stylesheet.headers["Content-Type"].startswith("text/css")
    assert b"body" in stylesheet.body


def test_an_admin_can_log_in_over_https_behind_the_proxy(stack):
    # CSRF checks the Origin against https://<host>: this fails unless the app trusts
    # nginx's X-Forwarded-Proto.
    page = stack.get("/admin/login/")
    cookie = re.search(r"csrftoken=([^;]+)", page.headers["Set-Cookie"]).group(1)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1)
    form = b"csrfmiddlewaretoken=%s&username=%s&password=%s&next=/admin/" % (
        token,
        stack.username.encode(),
        stack.password.encode(),
    )

    answer = request(
        f"{stack.url}/admin/login/",
        "POST",
        body=form,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"csrftoken={cookie}",
            "Origin": stack.url,
            "Referer": f"{stack.url}/admin/login/",
        },
        ssl_context=stack.tls,
    )

    assert answer.status == 302, answer.body[:500]
    assert answer.headers["Location"] == "/admin/"
    assert any(cookie.startswith("sessionid=") for cookie in answer.headers.get_all("Set-Cookie"))


def test_a_greenarrow_get_with_basic_credentials(stack):
    answer = stack.get(
        f"/ga/api/v3/eng/relay_servers/{stack.relay_id}", **basic(stack.username, stack.password)
    )

    assert answer.status == 200
    assert answer.json()["data"]["relay_server"]["name"] == "via-nginx"
    [line] = stack.lines_for(answer.headers["X-Request-Id"])
    assert (line["user"], line["status"]) == (stack.username, 200)


def test_boto3_get_relay_is_signed_for_the_host_the_client_used(stack):
    client = mailmanager(stack.url, stack.access_key, verify=str(stack.cert))
    relay_id = client.list_relays()["Relays"][0]["RelayId"]

    got = client.get_relay(RelayId=relay_id)

    assert got["RelayName"] == "via-nginx"
    assert (
        got["ResponseMetadata"]["HTTPHeaders"]["x-request-id"]
        == got["ResponseMetadata"]["RequestId"]
    )


def test_every_answer_carries_the_request_id_nginx_made_and_the_app_logged(stack):
    answer = stack.get("/healthz", **{"X-Request-Id": "chosen-by-the-client"})

    request_id = answer.headers["X-Request-Id"]
    assert HEX_ID.fullmatch(request_id)  # nginx's $request_id, not the client's
    assert answer.headers.get_all("X-Request-Id") == [request_id]
    [line] = stack.lines_for(request_id)
    assert (line["method"], line["path"], line["status"]) == ("GET", "/healthz", 200)


def test_a_2_mib_body_is_refused_by_nginx_before_it_reaches_a_worker(stack):
    answer = request(
        f"{stack.url}/ga/api/v3/eng/relay_servers",
        "POST",
        body=b"x" * (2 * 1024 * 1024),
        headers={**basic(stack.username, stack.password), "Content-Type": "application/json"},
        ssl_context=stack.tls,
    )

    assert answer.status == 413
    request_id = answer.headers["X-Request-Id"]
    assert HEX_ID.fullmatch(request_id)
    assert stack.lines_for(request_id) == []


def test_plain_http_is_redirected_to_https(stack):
    answer = request(f"{stack.http_url}/admin/login/")

    assert answer.status == 301
    assert answer.headers["Location"].startswith("https://127.0.0.1")


def test_https_only_one_hsts_header_secure_cookies_and_plain_http_redirected_by_the_app(stack):
    page = stack.get("/admin/login/")
    straight_to_the_app = request(
        f"{stack.app.url}/ga/api/v3/eng/relay_servers", unix_socket=stack.app.socket
    )
    probe_straight_to_the_app = request(f"{stack.app.url}/readyz", unix_socket=stack.app.socket)

    assert page.headers.get_all("Strict-Transport-Security") == [
        "max-age=31536000; includeSubDomains; preload"
    ]
    [csrf_cookie] = [c for c in page.headers.get_all("Set-Cookie") if c.startswith("csrftoken=")]
    assert "; Secure" in csrf_cookie
    assert straight_to_the_app.status == 301
    assert straight_to_the_app.headers["Location"].startswith("https://")
    assert probe_straight_to_the_app.status == 200


def test_a_newline_in_the_basic_username_and_path_cannot_forge_a_log_line(stack):
    answer = stack.get(
        "/ga/api/v3/eng/relay_servers%0Aforged",
        **basic('intruder\n{"event": "request", "user": "admin"}', "pw\nsecret"),
    )

    assert answer.status == 404
    # Every line the app server wrote (gunicorn's own included) is one JSON object: no access
    # log line with the raw username, and the path's newline stays escaped inside its line.
    [line] = stack.lines_for(answer.headers["X-Request-Id"])
    assert line["path"] == "/ga/api/v3/eng/relay_servers\nforged"
    assert line["user"] is None
    assert "intruder" not in stack.app.output()
