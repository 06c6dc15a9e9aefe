"""Who is on the other end of a request: the client's address, and whether it is our proxy.

Behind a reverse proxy every connection comes from the proxy, and the client's own address is in
the `X-Forwarded-For` header the proxy sets. Anyone can send that header, so it is believed only
when the connection comes from a proxy the deployment names in RELAYAPI_TRUSTED_PROXIES, and
then only as far as the chain of trusted proxies goes: reading the header from the right, the
first address that is not a trusted proxy is the client (everything left of it was written by
someone we do not trust). Brute-force counting and the audit log both use this address, and the
request log believes the proxy's X-Request-Id only from the same peers.

A trusted proxy is named by its address or network, or as `unix`: a connection over gunicorn's
Unix socket, which has no address (gunicorn puts an empty REMOTE_ADDR in the environ for it).
The production path binds gunicorn to a socket only nginx may open, so `unix` trusts exactly
nginx; a loopback address would trust every process on the machine that can open a TCP
connection.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings

# RELAYAPI_TRUSTED_PROXIES' name for "a connection over the Unix socket".
UNIX_SOCKET = "unix"


@lru_cache(maxsize=16)
def _trust(trusted):
    """(whether the Unix socket is trusted, the trusted networks)."""
    networks = tuple(
        ipaddress.ip_network(entry, strict=False) for entry in trusted if entry != UNIX_SOCKET
    )
    return UNIX_SOCKET in trusted, networks


def _parse(text):
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket is the same client.
    return getattr(address, "ipv4_mapped", None) or address


def _trusted(address, networks):
    return any(address in network for network in networks)


def _peer(request):
    """(the connection's own address or None, whether that peer is a trusted proxy)."""
    unix_trusted, networks = _trust(tuple(settings.RELAYAPI_TRUSTED_PROXIES))
    raw = request.META.get("REMOTE_ADDR", "")
    if raw == "":
        return None, unix_trusted
    remote = _parse(raw)
    return remote, remote is not None and _trusted(remote, networks)


def from_trusted_proxy(request):
    """Whether the connection comes from a proxy the deployment trusts (RELAYAPI_TRUSTED_PROXIES):
    only then are the headers a proxy sets (X-Forwarded-For, X-Request-Id) evidence."""
    return _peer(request)[1]


def client_address(request):
    """The client's IP address as text (normalised: `::ffff:10.0.0.1` is `10.0.0.1`), or None
    when the connection has none (a Unix socket without a trusted proxy in front)."""
    remote, trusted = _peer(request)
    if not trusted:
        return str(remote) if remote is not None else None
    _, networks = _trust(tuple(settings.RELAYAPI_TRUSTED_PROXIES))
    client = remote
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            # Not an address: what a trusted proxy wrote is only what it received. The last
            # hop we could trust is all we know.
            break
        client = address
        if not _trusted(address, networks):
            break
    return str(client) if client is not None else None
