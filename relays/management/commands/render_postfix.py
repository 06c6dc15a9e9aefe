import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from relays import crypto
from relays.postfix import files, install
from relays.postfix.render import RenderError, render


class Command(BaseCommand):
    help = (
        "Compile the relay servers, IP addresses, routing rules and the default VirtualMTA into a "
        "Postfix configuration fragment: --out DIR writes it (main.cf.relayapi, "
        "master.cf.relayapi and the lookup tables to postmap) as a new private directory, in "
        "place of a previous render there; --apply installs it into the running Postfix (lock, "
        "write aside, postmap, postfix check, swap, reload), or changes nothing and names the "
        "step that failed."
    )

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument(
            "--out",
            metavar="DIR",
            help="where to write it: a new directory, or one holding a previous render, owned by "
            "you and writable by no one else (never a symbolic link)",
        )
        target.add_argument("--apply", action="store_true", help="install it into Postfix")
        parser.add_argument(
            "--postfix-config",
            metavar="DIR",
            default="/etc/postfix",
            help="with --apply: Postfix's configuration directory (default /etc/postfix)",
        )
        parser.add_argument(
            "--wait",
            metavar="SECONDS",
            type=float,
            default=install.LOCK_WAIT,
            help="with --apply: how long to wait for an apply already running before giving up "
            f"(default {install.LOCK_WAIT})",
        )
        parser.add_argument(
            "--base",
            metavar="PATH",
            help="the directory the tables will be read from by Postfix (default: DIR)",
        )

    def handle(self, *args, out=None, apply=False, base=None, postfix_config, wait, **options):
        if apply:
            postfix = install.Postfix(Path(os.path.abspath(postfix_config)))
            try:
                install.apply(postfix, log=self.stdout.write, wait=wait)
            except install.StepFailed as error:
                raise CommandError(str(error)) from None
            except crypto.UndecryptableSecret as error:
                raise CommandError(f"nothing applied: {error}") from None
            return
        directory = os.path.abspath(out)  # not resolved: a symlink is refused, never followed
        try:
            rendering = render(base or directory)
            written = files.write(rendering, directory)
        except (RenderError, crypto.UndecryptableSecret) as error:
            raise CommandError(f"nothing written: {error}") from None
        except files.UnsafeDirectory as error:
            raise CommandError(f"nothing written: --out {error}") from None
        except OSError as error:  # before the new directory took DIR's place (it is removed)
            raise CommandError(f"nothing written: {error}") from None
        for warning in rendering.warnings:
            self.stderr.write(f"warning: {warning}")
        self.stdout.write(f"{len(written)} files written to {directory}")
