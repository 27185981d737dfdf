"""The one way ovnbgp replaces a file: readers see the old text or the new, never a torn one.

A temp file in the same directory (so the rename stays on one filesystem) is written, flushed to
disk, given its mode (and owner), renamed over the target, and the directory is synced so the
rename itself survives a crash. FRR's config, its daemons file, rt_tables.d, the kernel state
record, the FRR apply state and status.json all go through `atomic_write`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def mode_of(path: Path | str, default: int) -> int:
    """The permission bits of `path`, or `default` when it does not exist (yet)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return default


def atomic_write(path: Path | str, text: str, *, mode: int = 0o644,
                 owner: tuple[int, int] | None = None) -> None:
    """Replace `path` with `text` atomically and durably; creates the directory.

    `owner` (uid, gid) is applied only when running as root (-1 keeps a field as it is).
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        if owner is not None and os.geteuid() == 0:
            os.chown(tmp, *owner)
        os.replace(tmp, p)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    _fsync_dir(p.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
