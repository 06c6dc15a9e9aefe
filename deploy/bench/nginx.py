"""The nginx of the bench's proxy row, on loopback.

The site is the production one, deploy/nginx/relayapi.conf.template, rendered as its header
says (every `${RELAYAPI_*}` replaced, nginx's own `$variables` kept) for two free loopback ports
and a throwaway self-signed certificate, so the row measures the real proxy path: TLS, request
buffering, forwarded headers. It sits in a main config of the bench's own (foreground, its own
pid, temp and log paths). Should the template be missing, a minimal plain-HTTP proxy stands in.
"""

import ipaddress
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1] / "nginx" / "relayapi.conf.template"

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


def _self_signed(directory):
    """A certificate and key for 127.0.0.1, valid for a day (wrk does not verify it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def render(directory, upstream, https_port, http_port):
    """Write nginx.conf (and the site) into `directory`; returns its path, the base URL and
    what the config is, for the results file."""
    if TEMPLATE.exists():
        cert, key = _self_signed(directory)
        values = {
            "RELAYAPI_SERVER_NAME": "127.0.0.1",
            "RELAYAPI_HTTPS_LISTEN": f"127.0.0.1:{https_port}",
            "RELAYAPI_HTTP_LISTEN": f"127.0.0.1:{http_port}",
            "RELAYAPI_UPSTREAM": upstream,
            "RELAYAPI_TLS_CERTIFICATE": str(cert),
            "RELAYAPI_TLS_CERTIFICATE_KEY": str(key),
            "RELAYAPI_NGINX_LOG_DIR": str(directory),
        }

        def value(match):
            if match[1] not in values:
                raise TemplateError(f"{TEMPLATE} names ${{{match[1]}}}, unknown to the bench")
            return values[match[1]]

        site = re.sub(r"\$\{(RELAYAPI_[A-Z0-9_]+)\}", value, TEMPLATE.read_text())
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
