import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from relays import access_keys


class Command(BaseCommand):
    help = "Create a Mail Manager API access key for USERNAME; prints it once, as JSON."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, username, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        key = access_keys.create_access_key(user)
        self.stdout.write(
            json.dumps({"AccessKeyId": key.access_key_id, "SecretAccessKey": key.secret})
        )
