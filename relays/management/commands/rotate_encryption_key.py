from django.core.management.base import BaseCommand, CommandError

from relays import crypto


class Command(BaseCommand):
    help = (
        "Re-encrypt every secret stored encrypted under the newest key of "
        "RELAYAPI_ENCRYPTION_KEY (the first); the older keys must still be listed after it. "
        "Afterwards the older keys can be removed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch-size",
            type=int,
            default=crypto.BATCH_SIZE,
            help=f"rows per transaction (default {crypto.BATCH_SIZE})",
        )

    def handle(self, *args, batch_size, **options):
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1")
        # One transaction per batch, not one for everything: every row stays readable during
        # the run (the old keys still decrypt), so nothing needs it to be all-or-nothing, while
        # one transaction over 100,000 rows would hold their locks, and so hold up the API's
        # writes to them, for the whole run. Interrupted, it is simply run again.
        total = 0
        for model, field in crypto.encrypted_fields():
            where = f"{model._meta.db_table}.{field.column}"
            try:
                count = crypto.rewrite_column(
                    model,
                    field.column,
                    lambda token, where=where: crypto.rotate(token, where),
                    batch_size=batch_size,
                )
            except crypto.UndecryptableSecret as error:
                raise CommandError(str(error)) from None
            self.stdout.write(f"{where}: {count} re-encrypted")
            total += count
        self.stdout.write(f"{total} values re-encrypted under the newest key")
