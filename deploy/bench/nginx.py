"""The nginx of the bench's proxy row, on loopback.

The site is the production one, deploy/nginx/relayapi.conf.template, rendered as its header
says (every `${RELAYAPI_*}` replaced, nginx's own `$variables` kept) for two free loopback ports
and a throwaway self-signed certificate, so the row measures the real proxy path: TLS, request
buffering, forwarded headers. It sits in a main config of the bench's own (foreground, its own
pid, temp and log paths). Should the template be missing, a minimal plain-HTTP proxy stands in.
"""

import sys
from pathlib import Path

# deploy/nginx/loopback.py: the certificate and template rendering the end-to-end tests use too.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "nginx"))
import loopback

TEMPLATE = loopback.SITE_TEMPLATE

MAIN = """\
# Written by deploy/bench/run.py for one run.
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/site.conf;
}}
"""

PLAIN_SITE = """\
server {{
    listen {listen};
    access_log {dir}/access.log;
    client_max_body_size 1m;
    location / {{
        proxy_pass http://{upstream};
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $remote_addr;
        proxy_set_header X-Forwarded-Proto $scheme;
    }}
}}
"""


class TemplateError(Exception):
    """The site template names something this renderer does not know."""


def render(directory, upstream, https_port, http_port):
    """Write nginx.conf (and the site) into `directory`; returns its path, the base URL and
    what the config is, for the results file."""
    if TEMPLATE.exists():
        cert, key = loopback.self_signed_certificate(directory)
        try:
            site = loopback.render_site(
                {
                    "RELAYAPI_SERVER_NAME": "127.0.0.1",
                    "RELAYAPI_HTTPS_LISTEN": f"127.0.0.1:{https_port}",
                    "RELAYAPI_HTTP_LISTEN": f"127.0.0.1:{http_port}",
                    "RELAYAPI_UPSTREAM": upstream,
                    "RELAYAPI_TLS_CERTIFICATE": str(cert),
                    "RELAYAPI_TLS_CERTIFICATE_KEY": str(key),
                    "RELAYAPI_NGINX_LOG_DIR": str(directory),
                }
            )
        except KeyError as error:
            raise TemplateError(f"{error.args[0]} (unknown to the bench)") from None
        base = f"https://127.0.0.1:{https_port}"
        what = "the production site `deploy/nginx/relayapi.conf.template`, TLS, self-signed"
    else:
        site = PLAIN_SITE.format(dir=directory, listen=f"127.0.0.1:{http_port}", upstream=upstream)
        base = f"http://127.0.0.1:{http_port}"
        what = "a minimal plain-HTTP proxy (no site template found)"
    (directory / "site.conf").write_text(site)
    conf = directory / "nginx.conf"
    conf.write_text(MAIN.format(dir=directory))
    return conf, base, what
