"""The admin facade: people manage the same records, under the same rules, as the two APIs.

One module per concept: `virtual_mtas` (the store's records), `audited` (the audit log and the
History pages), `login` (the login form, counted against brute force).
"""

from relays.admin import audited, login, virtual_mtas  # noqa: F401 (they register with the site)
