"""Writing a Rendering to a directory: the RelayAPI sections of main.cf and master.cf as files of
their own, and the tables with their modes (the SASL maps 0600, never readable by others)."""

import os
from pathlib import Path

MAIN_CF, MASTER_CF = "main.cf.relayapi", "master.cf.relayapi"


def write(rendering, directory):
    """Write `rendering` into `directory` (created 0755 if missing); the paths written."""
    directory = Path(directory)
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    files = {
        MAIN_CF: (rendering.main_cf.encode(), 0o644),
        MASTER_CF: (rendering.master_cf.encode(), 0o644),
        **rendering.files,
    }
    written = []
    for name, (content, mode) in sorted(files.items()):
        path = directory / name
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        # Created with its final mode: a secret is never readable by others, not even briefly.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(descriptor, "wb") as file:
            file.write(content)
        os.chmod(path, mode)  # an existing file keeps its old mode through O_CREAT
        written.append(path)
    return written
