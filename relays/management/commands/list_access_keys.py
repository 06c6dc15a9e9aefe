from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from relays import access_keys

COLUMNS = ("ACCESS KEY ID", "USER", "ACTIVE", "CREATED", "LAST USED")
STAMP = "%Y-%m-%dT%H:%M:%SZ"


class Command(BaseCommand):
    help = (
        "List the Mail Manager API access keys (never their secrets), of USERNAME or of everyone: "
        "id, user, whether active, when created, when last used (to the minute)."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", nargs="?")

    def handle(self, username=None, **options):
        # Without their secrets: listing decrypts nothing, so it works under any key.
        keys = access_keys.without_secret().select_related("user").order_by("id")
        if username is not None:
            if not get_user_model().objects.filter(username=username).exists():
                raise CommandError(f"no user named {username!r}")
            keys = keys.filter(user__username=username)
        rows = [COLUMNS] + [
            (
                key.access_key_id,
                key.user.get_username(),
                "yes" if key.is_active else "revoked",
                key.created_at.strftime(STAMP),
                key.last_used_at.strftime(STAMP) if key.last_used_at else "never",
            )
            for key in keys
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
        for row in rows:
            self.stdout.write(
                "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            )
