"""The core's database models, by concept; import them from here (`from relays.models import
RelayServer`), not from their modules.

- `store`: the delivery-path store every door shares (VirtualMTAs of each type, routes, the
  default VirtualMTA, record counts, a relay's Mail Manager tags);
- `access`: who may call the APIs (access keys, refused logins) and CreateRelay's idempotency
  tokens;
- `audit`: the audit log.
"""

# The store registers first, as when it was one module: Django lists models in registration
# order (dumpdata, the key rotation's report).
from relays.models.store import (  # noqa: I001
    DefaultVirtualMta,
    DeliverThrough,
    DomainOverride,
    IpAddress,
    OverrideDomain,
    RandomizationType,
    RecordCount,
    RelayServer,
    RelayTag,
    RoutingRule,
    VirtualMta,
    new_relay_id,
    relay_arn,
)
from relays.models.access import AccessKey, ClientToken, LoginFailure
from relays.models.audit import AuditEntry

__all__ = [
    "AccessKey",
    "AuditEntry",
    "ClientToken",
    "DefaultVirtualMta",
    "DeliverThrough",
    "DomainOverride",
    "IpAddress",
    "LoginFailure",
    "OverrideDomain",
    "RandomizationType",
    "RecordCount",
    "RelayServer",
    "RelayTag",
    "RoutingRule",
    "VirtualMta",
    "new_relay_id",
    "relay_arn",
]
