"""Access keys for the Mail Manager facade: an id, and a secret kept encrypted at rest.

The key pair and the writes live in the core (relays.access_keys), shared with the admin and
the management commands; this name stays for the facade's own callers.
"""

from relays.access_keys import new_key_pair

__all__ = ["new_key_pair"]
