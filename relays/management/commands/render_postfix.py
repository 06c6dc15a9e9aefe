from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from relays.postfix import files
from relays.postfix.render import RenderError, render


class Command(BaseCommand):
    help = (
        "Compile the relay servers, IP addresses, routing rules and the default VirtualMTA into a "
        "Postfix configuration fragment: --out DIR writes it (main.cf.relayapi, "
        "master.cf.relayapi and the lookup tables to postmap)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--out", metavar="DIR", required=True, help="where to write it")
        parser.add_argument(
            "--base",
            metavar="PATH",
            help="the directory the tables will be read from by Postfix (default: DIR)",
        )

    def handle(self, *args, out, base=None, **options):
        directory = Path(out).resolve()
        try:
            rendering = render(base or str(directory))
        except RenderError as error:
            raise CommandError(f"nothing written: {error}") from None
        written = files.write(rendering, directory)
        for warning in rendering.warnings:
            self.stderr.write(f"warning: {warning}")
        self.stdout.write(f"{len(written)} files written to {directory}")
