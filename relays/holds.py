"""Why the mail of a delivery path waits: one function, so that the admin's "Effective
delivery" and the Postfix compiler never disagree about it.

A final delivery path is held (its mail stays queued, deferred: not bounced, not refused) when
- it is an IP address whose delivery is paused;
- it is a relay server whose credentials are a Secret ARN, which Postfix cannot read;
- it is a relay server whose values Postfix cannot be given: records written before the write
  rules refused such values (relays.validators), or loaded in SQL. The compiler renders
  everything else and names these.
"""

import re

from django.core.exceptions import ValidationError

from relays import validators as v
from relays.models import IpAddress, RelayServer

# What the compiler writes into main.cf and master.cf as a host name (relays.postfix.render
# checks every one it writes against this very pattern).
POSTFIX_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?")


def credential_problem(username, password):
    """Why Postfix cannot authenticate with this username and password, or None: the write
    rules Postfix's SASL password map needs (relays.validators), for records older than them."""
    if username is None and password is None:
        return None
    if username is None:
        return "a password without a username"
    checks = [
        (username, "username", v.username_characters),
        (username, "username", v.credential_edges),
    ]
    if password is not None:
        checks.append((password, "password", v.credential_edges))
    for value, label, check in checks:
        try:
            check(value)
        except ValidationError as error:
            return f"its {label} {error.messages[0]}"
    return None


def held(record):
    """Why mail through `record` (a final delivery path: an IP address or a relay server) waits,
    or None when it is delivered."""
    if isinstance(record, IpAddress):
        if record.delivery_paused:
            return "delivery is paused"
        if not POSTFIX_HOSTNAME.fullmatch(record.hostname):
            return f"Postfix cannot take its HELO name {record.hostname!r}"
        return None
    if isinstance(record, RelayServer):
        if record.secret_arn:
            return "its credentials are a Secret ARN, which Postfix cannot read"
        for label, value in (
            ("destination", record.destination_hostname),
            ("HELO name", record.source_hostname),
        ):
            if not POSTFIX_HOSTNAME.fullmatch(value):
                return f"Postfix cannot take its {label} {value!r}"
        problem = credential_problem(record.destination_username, record.destination_password)
        if problem:
            return f"Postfix cannot take its SMTP credentials ({problem})"
    return None
