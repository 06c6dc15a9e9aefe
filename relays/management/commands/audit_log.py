import json

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.timezone import make_aware

from relays.models import AuditEntry


def moment(text):
    """An ISO date or date-time (UTC unless it says otherwise)."""
    when = parse_datetime(text)
    if when is None:
        day = parse_date(text)
        if day is None:
            raise ValueError
        when = parse_datetime(f"{day.isoformat()}T00:00:00")
    return make_aware(when) if when.tzinfo is None else when


class Command(BaseCommand):
    help = (
        "Print the audit log, oldest first: every create, update and delete through any door "
        "(relays, access keys, users and groups), every SMTP probe and Postfix apply, secrets "
        "redacted."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--since", help="ISO date or date-time (UTC), e.g. 2026-11-23 or 2026-11-23T10:00"
        )
        parser.add_argument("--until", help="ISO date or date-time (UTC), exclusive")
        parser.add_argument("--json", action="store_true", help="one JSON object per line")

    def handle(self, since=None, until=None, json=False, **options):
        entries = AuditEntry.objects.order_by("at", "id")
        for name, value, lookup in (("--since", since, "at__gte"), ("--until", until, "at__lt")):
            if value is None:
                continue
            try:
                entries = entries.filter(**{lookup: moment(value)})
            except (ValueError, OverflowError):
                raise CommandError(
                    f"{name} must be an ISO date or date-time, not {value!r}"
                ) from None
        for entry in entries.iterator(chunk_size=1000):
            self.stdout.write(self.as_json(entry) if json else self.as_text(entry))

    @staticmethod
    def as_json(entry):
        return json.dumps(
            {
                "at": entry.at.isoformat(),
                "actor": entry.actor,
                "facade": entry.facade,
                "address": entry.address,
                "request_id": entry.request_id,
                "access_key_id": entry.access_key_id,
                "access_key_maker": entry.access_key_maker,
                "action": entry.action,
                "record_type": entry.record_type,
                "record_id": entry.record_id,
                "record_name": entry.record_name,
                "before": entry.before,
                "after": entry.after,
            },
            sort_keys=True,
        )

    @staticmethod
    def as_text(entry):
        changed = sorted(
            key
            for key in set(entry.before or {}) | set(entry.after or {})
            if (entry.before or {}).get(key) != (entry.after or {}).get(key)
        )
        fields = f" [{', '.join(changed)}]" if entry.action == "update" else ""
        key = (
            f" with key {entry.access_key_id} (made by {entry.access_key_maker or '-'})"
            if entry.access_key_id
            else ""
        )
        return (
            f"{entry.at.isoformat()} {entry.actor or '-'} via {entry.facade}{key} "
            f"from {entry.address or '-'}: {entry.action} {entry.record_type} {entry.record_id} "
            f"({entry.record_name}){fields}"
        )
