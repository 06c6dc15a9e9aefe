import json

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from relays import audit
from relays.mailmanager import keys
from relays.models import AccessKey, AuditEntry


class Command(BaseCommand):
    help = "Create a Mail Manager API access key for USERNAME; prints it once, as JSON."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, username, **options):
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user named {username!r}")
        key_id, secret = keys.new_key_pair()
        with transaction.atomic():
            key = AccessKey.objects.create(access_key_id=key_id, secret=secret, user=user)
            audit.record_change(AuditEntry.Action.CREATE, key)
        self.stdout.write(json.dumps({"AccessKeyId": key_id, "SecretAccessKey": secret}))
