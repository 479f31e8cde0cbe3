"""One writer per directory: an exclusive ``flock`` on ``<dir>/.lock`` held while it writes.

Two ``trainer.run`` with the same run name (or two ``corpus.mix`` computing the same plan) used
to both write one directory: two curves in one ``metrics.jsonl``, the last writer's checkpoints.
The first now holds the lock for as long as it writes; the second is refused at once, in one
line naming the holder's pid. The kernel drops the lock when the holder dies (kill -9 included),
so a stale lock cannot exist; and holding it proves no other writer of the directory is alive,
which is when the temporary files of killed writes may be removed (:func:`reclaim_temp_files`).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
from pathlib import Path

from corpus.errors import UserError

LOCK_NAME = ".lock"
# atomic_path's ``.<name>.tmp-<pid>`` files and save_best's ``.best-model.tmp-<pid>/`` directories
TEMP_NAME = re.compile(r"^\..+\.tmp-\d+$")


class DirLock:
    """A held lock; released by :meth:`release` or when the process ends."""

    def __init__(self, directory: Path, fd: int):
        self.directory = directory
        self.fd: int | None = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def hold(directory: Path, what: str) -> DirLock:
    """Take ``directory``'s writer lock or raise one line naming the holder's pid.

    ``what`` names the directory's role in the message ("run directory", "plan directory").
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
        os.close(fd)
        raise UserError(f"{what} {directory} is in use by pid {holder} (another writer holds {path}); "
                        f"wait for it to finish, or use another name") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return DirLock(directory, fd)


def reclaim_temp_files(*directories: Path) -> list[Path]:
    """Remove ``.<name>.tmp-<pid>`` files and directories of killed writes in ``directories``
    (call only while holding their lock: then no live writer owns one)."""
    removed = []
    for directory in directories:
        try:
            entries = list(Path(directory).iterdir())
        except OSError:
            continue
        for entry in entries:
            if not TEMP_NAME.match(entry.name):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed
