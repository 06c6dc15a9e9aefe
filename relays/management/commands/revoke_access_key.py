from django.core.management.base import BaseCommand, CommandError

from relays import access_keys


class Command(BaseCommand):
    help = (
        "Revoke a Mail Manager API access key: requests signed with it are refused from now on. "
        "The key is kept (inactive), so list_access_keys still shows whose it was."
    )

    def add_arguments(self, parser):
        parser.add_argument("access_key_id")

    def handle(self, access_key_id, **options):
        # Without its secret: a key stored under another encryption key is revoked too.
        key = (
            access_keys.without_secret()
            .select_related("user")
            .filter(access_key_id=access_key_id)
            .first()
        )
        if key is None:
            raise CommandError(f"no access key {access_key_id!r}")
        if not access_keys.set_active(key, False):
            self.stdout.write(f"{access_key_id} ({key.user.get_username()}) was already revoked")
            return
        self.stdout.write(f"revoked {access_key_id} ({key.user.get_username()})")
