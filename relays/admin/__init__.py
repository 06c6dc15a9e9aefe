"""The admin facade: people manage the same records, under the same rules, as the two APIs.

One module per concept: `accounts` (Django's users and groups, audited), `virtual_mtas` (the
store's records), `audited` (the audit log and the History pages), `login` (the login form,
counted against brute force), `mail_manager` (access keys, and a relay's RelayId, ARN and tags),
`ip_addresses` (delivery status, bulk pause and resume), `probes` (the SMTP probe action),
`references` (the VirtualMTA picker, the "Used by" and "Effective delivery" panels),
`routing_rules` (the routes editor), `settings_pages` (the default VirtualMTA as one page),
`home` (branding, the home page's overview).
"""

from relays.admin import (  # noqa: F401 (they register with the site)
    accounts,
    audited,
    home,
    login,
    mail_manager,
    references,
    routing_rules,
    settings_pages,
    virtual_mtas,
)
