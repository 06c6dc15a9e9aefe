"""Writing a Rendering to a directory: the RelayAPI sections of main.cf and master.cf as files of
their own, and the tables with their modes (the SASL maps 0600, never readable by others).

The command runs as root, often into a place other users can write to (`/tmp`). So nothing
already on disk is ever opened: a render goes into a fresh directory beside the target
(`mkdtemp`: a random name, mode 0700, ours), every file in it created new, and the whole
directory then takes the target's place in one rename. No symlink is followed, and no file
keeps an owner or mode someone else gave it. An existing target is replaced only when it is
ours: not a symlink, owned by the user running this, writable by no one else, and holding only
what a render writes.
"""

import ctypes
import errno
import os
import shutil
import stat
import tempfile
from pathlib import Path

MAIN_CF, MASTER_CF = "main.cf.relayapi", "master.cf.relayapi"
# What a render puts at the top of its directory (postmap adds its .db files beside the tables).
RENDERED = {MAIN_CF, MASTER_CF, "sasl", "transport"}

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_AT_FDCWD, _RENAME_EXCHANGE = -100, 2  # <fcntl.h>, <linux/fs.h>
try:
    _renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
except (AttributeError, OSError):  # not Linux, or a libc older than glibc 2.28
    _renameat2 = None


class UnsafeDirectory(Exception):
    """The target is not a directory a render may replace; nothing was written."""


def write(rendering, directory):
    """Write `rendering` as the directory `directory`, in place of a previous render there; the
    paths written. UnsafeDirectory when `directory` is not ours to replace."""
    directory = Path(os.path.abspath(directory))  # not resolve(): that would follow a symlink
    exists = _replaceable(directory)
    directory.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f"{directory.name}.tmp-", dir=directory.parent))
    try:
        written = write_into(rendering, fresh)
        if exists:
            old = _exchange(fresh, directory)
        else:
            old = None
            # Never into what appeared there since: a symlink or a non-empty directory fails it.
            os.rename(fresh, directory)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise
    if old is not None:
        # fd-based: follows no symlink planted in it. The new render is in place by now, so a
        # failure here leaves the old one beside it rather than failing the render.
        shutil.rmtree(old, ignore_errors=True)
    return [directory / path.relative_to(fresh) for path in written]


def write_into(rendering, directory):
    """Write `rendering` into `directory`, one just made private and empty (`mkdtemp`): every
    file and subdirectory is created, none opened; the paths written."""
    directory = Path(directory)
    files = {
        MAIN_CF: (rendering.main_cf.encode(), 0o644),
        MASTER_CF: (rendering.master_cf.encode(), 0o644),
        **rendering.files,
    }
    written = []
    for name, (content, mode) in sorted(files.items()):
        path = directory / name
        os.makedirs(path.parent, mode=0o700, exist_ok=True)
        # Created with its final mode (fchmod: whatever the umask): a secret is never readable
        # by others, not even briefly.
        descriptor = os.open(path, _CREATE, mode)
        with os.fdopen(descriptor, "wb") as file:
            os.fchmod(descriptor, mode)
            file.write(content)
        written.append(path)
    return written


def _replaceable(directory):
    """Whether `directory` exists; UnsafeDirectory when it does and is not ours to replace."""
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(info.st_mode):
        raise UnsafeDirectory(f"{directory} is a symbolic link (never followed)")
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeDirectory(f"{directory} is not a directory")
    uid, mode = os.geteuid(), stat.S_IMODE(info.st_mode)
    if info.st_uid != uid:
        raise UnsafeDirectory(
            f"{directory} is owned by uid {info.st_uid}, not by uid {uid} (the user running this)"
        )
    writers = [
        who for who, bit in (("group", stat.S_IWGRP), ("others", stat.S_IWOTH)) if mode & bit
    ]
    if writers:
        raise UnsafeDirectory(
            f"{directory} is writable by {' and '.join(writers)} (mode {mode:04o})"
        )
    foreign = sorted(set(os.listdir(directory)) - RENDERED)
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise UnsafeDirectory(
            f"{directory} holds files a render does not write ({shown}); "
            "name a new directory or a previous render's"
        )
    return True


def _exchange(fresh, directory):
    """Put `fresh` in the place of `directory`; where the old one now is. In one step where the
    kernel can swap two names (Linux renameat2, RENAME_EXCHANGE): Postfix or a reader sees the
    old render or the new one, never neither. Elsewhere in two renames."""
    if _renameat2 is not None:
        source, target = os.fsencode(fresh), os.fsencode(directory)
        if _renameat2(_AT_FDCWD, source, _AT_FDCWD, target, _RENAME_EXCHANGE) == 0:
            return fresh
        error = ctypes.get_errno()
        if error not in (errno.ENOSYS, errno.EINVAL):  # not: the kernel or file system cannot
            raise OSError(error, os.strerror(error), str(directory))
    aside = tempfile.mkdtemp(prefix=f"{directory.name}.old-", dir=directory.parent)
    os.rename(directory, aside)  # over our own empty directory
    try:
        os.rename(fresh, directory)
    except OSError:
        os.rename(aside, directory)
        raise
    return Path(aside)
