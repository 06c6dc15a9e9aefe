"""Who is on the other end of a request: the client's address.

Behind a reverse proxy every connection comes from the proxy, and the client's own address is in
the `X-Forwarded-For` header the proxy sets. Anyone can send that header, so it is believed only
when the connection comes from a proxy the deployment names in RELAYAPI_TRUSTED_PROXIES, and
then only as far as the chain of trusted proxies goes: reading the header from the right, the
first address that is not a trusted proxy is the client (everything left of it was written by
someone we do not trust). Brute-force counting and the audit log both use this address.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=16)
def _networks(trusted):
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)


def _parse(text):
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket is the same client.
    return getattr(address, "ipv4_mapped", None) or address


def _trusted(address, networks):
    return any(address in network for network in networks)


def client_address(request):
    """The client's IP address as text (normalised: `::ffff:10.0.0.1` is `10.0.0.1`), or None
    when the connection has none (a Unix socket without a trusted proxy in front)."""
    remote = _parse(request.META.get("REMOTE_ADDR", ""))
    networks = _networks(tuple(settings.RELAYAPI_TRUSTED_PROXIES))
    if remote is None or not _trusted(remote, networks):
        return str(remote) if remote is not None else None
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
    return str(client)
