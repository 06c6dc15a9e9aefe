from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from relays.postfix import files, install
from relays.postfix.render import RenderError, render


class Command(BaseCommand):
    help = (
        "Compile the relay servers, IP addresses, routing rules and the default VirtualMTA into a "
        "Postfix configuration fragment: --out DIR writes it (main.cf.relayapi, "
        "master.cf.relayapi and the lookup tables to postmap); --apply installs it into the "
        "running Postfix (write aside, postmap, postfix check, swap, reload), or changes nothing "
        "and names the step that failed."
    )

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--out", metavar="DIR", help="where to write it")
        target.add_argument("--apply", action="store_true", help="install it into Postfix")
        parser.add_argument(
            "--postfix-config",
            metavar="DIR",
            default="/etc/postfix",
            help="with --apply: Postfix's configuration directory (default /etc/postfix)",
        )
        parser.add_argument(
            "--base",
            metavar="PATH",
            help="the directory the tables will be read from by Postfix (default: DIR)",
        )

    def handle(self, *args, out=None, apply=False, base=None, postfix_config, **options):
        if apply:
            try:
                install.apply(install.Postfix(Path(postfix_config)), log=self.stdout.write)
            except (install.StepFailed, RenderError) as error:
                raise CommandError(f"nothing changed: {error}") from None
            return
        directory = Path(out).resolve()
        try:
            rendering = render(base or str(directory))
        except RenderError as error:
            raise CommandError(f"nothing written: {error}") from None
        written = files.write(rendering, directory)
        for warning in rendering.warnings:
            self.stderr.write(f"warning: {warning}")
        self.stdout.write(f"{len(written)} files written to {directory}")
