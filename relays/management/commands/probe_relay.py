from django.core.management.base import BaseCommand, CommandError

from relays import probe
from relays.models import RelayServer
from relays.validators import is_storable


class Command(BaseCommand):
    help = (
        "Probe a relay server over SMTP as Postfix would reach it: connect from its source IP, "
        "EHLO with its HELO name, STARTTLS when offered, AUTH with its stored credentials (only "
        "over TLS), QUIT. Each step with its time and the server's reply; no message is sent. "
        "Every probe is in the audit log. Exit status 1 when a step fails."
    )

    def add_arguments(self, parser):
        parser.add_argument("relay", help="the relay server's id or name (any case)")
        parser.add_argument(
            "--timeout",
            type=float,
            default=probe.DEFAULT_TIMEOUT,
            help=f"seconds for the whole probe, every step and read included "
            f"(default {probe.DEFAULT_TIMEOUT:g}, at most 120)",
        )

    def handle(self, *args, relay, timeout, **options):
        if not 0 < timeout <= 120:
            raise CommandError("--timeout must be more than 0 and at most 120 seconds")
        found = None
        if is_storable(relay):
            found = RelayServer.objects.filter(name__iexact=relay).first()
        if found is None and relay.isascii() and relay.isdigit() and int(relay) < 2**63:
            found = RelayServer.objects.filter(pk=int(relay)).first()
        if found is None:
            shown = relay.encode("utf-8", "backslashreplace").decode()
            raise CommandError(f"no relay server with id or name {shown!r}")
        result = probe.probe(found, timeout=timeout)
        probe.record(result)  # as the operating-system user, door `command`
        host, port = found.destination_hostname, found.destination_port
        address = f" ({result.address})" if result.address not in (None, host) else ""
        self.stdout.write(
            f"relay server {found.pk} ({found.name}): {found.source_ip} -> {host}:{port}{address}"
        )
        for step in result.steps:
            self.stdout.write(str(step))
        if not result.ok:
            raise CommandError(result.summary())
