"""One build per version id at a time, and the leftovers of killed builds reclaimed.

Two builds of the same version racing used to end with the second deleting the directory the
first had registered. A build now holds an exclusive ``flock`` on ``.<vid>.lock`` beside the
version directory from its catalog check to its registration: a second build waits, then
finds the version built. Holding the lock also proves no other build of that version is alive,
so ``.<vid>.staging-<pid>`` directories left by a SIGKILL are removed then.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Iterator

from corpus.errors import CatalogBusy


@contextlib.contextmanager
def version_lock(final_dir: Path, timeout: float) -> Iterator[None]:
    """Hold the version's lock (waiting at most ``timeout`` seconds, saying so once)."""
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    path = final_dir.with_name(f".{final_dir.name}.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise CatalogBusy(f"another build of {final_dir.name} held {path} for {timeout:.0f} s") from None
                if not told:
                    print(f"waiting for another build of {final_dir.name}", file=sys.stderr)
                    told = True
                time.sleep(0.1)
        yield
    finally:
        os.close(fd)  # releases the lock


def reclaim_staging(final_dir: Path) -> list[Path]:
    """Remove ``.<vid>.staging-*`` left by killed builds (call only while holding the lock)."""
    stale = sorted(final_dir.parent.glob(f".{final_dir.name}.staging-*"))
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def die_with_parent() -> None:
    """Linux: have the kernel SIGKILL this (worker) process when its parent dies."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
