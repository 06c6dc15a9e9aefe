"""The production nginx site, run on loopback by the end-to-end tests and `make bench`.

One place for what both need: a throwaway self-signed certificate, and the site template
rendered as envsubst would render it (an unknown ${RELAYAPI_*} name is an error, not an empty
string).
"""

import datetime
import ipaddress
import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SITE_TEMPLATE = Path(__file__).resolve().parent / "relayapi.conf.template"
PLACEHOLDER = re.compile(r"\$\{(RELAYAPI_[A-Z0-9_]+)\}")


def self_signed_certificate(directory, host="127.0.0.1"):
    """(certificate path, key path) for `host`, valid for a day; the certificate is its own CA,
    so clients verify against the certificate file itself."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = Path(directory) / "cert.pem", Path(directory) / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


def render_site(values):
    """The site template with its ${RELAYAPI_*} names replaced from `values`."""

    def value(match):
        if match[1] not in values:
            raise KeyError(f"{SITE_TEMPLATE.name} names ${{{match[1]}}}, which was not given")
        return values[match[1]]

    return PLACEHOLDER.sub(value, SITE_TEMPLATE.read_text())
