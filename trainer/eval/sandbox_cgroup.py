"""A memory cgroup per sandbox run: one limit on everything the program's processes hold.

RLIMIT_AS bounds each process's address space, but not memory outside it: the pages of a
memfd, a SysV segment or a tmpfs file stay allocated after the mapping goes. A memory cgroup
counts all of them (anonymous, shmem, tmpfs, page cache) for every process of the sandbox
together; the kernel OOM-kills inside the group when it is full, and ``oom_kills()`` says so.

cgroup v2 is used where our own cgroup delegates the ``memory`` controller (``memory.max``),
else cgroup v1's memory hierarchy (``memory.limit_in_bytes``). Only root can make one; where
neither exists :func:`create` returns None, the sandbox then refuses ``memfd_create`` and
``shmget`` instead, and ``isolation()`` reports ``memory_cgroup=no``.
"""

from __future__ import annotations

import functools
import os
import secrets
import time

__all__ = ["MemoryCgroup", "create", "available"]


class MemoryCgroup:
    def __init__(self, path: str, version: int):
        self.path = path
        self.version = version

    def oom_kills(self) -> int:
        """Processes the kernel killed because the group was full."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            with open(os.path.join(self.path, name)) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except OSError:
            pass
        return 0

    def remove(self) -> None:
        """Remove the group once its processes are gone (reaping may lag a moment behind)."""
        for _ in range(200):
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.01)


def _mountpoints() -> dict[str, str]:
    """{"v2": mount point, "v1": memory hierarchy's mount point} from /proc/self/mountinfo."""
    found: dict[str, str] = {}
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                left, _, right = line.partition(" - ")
                fields, extra = left.split(), right.split()
                if not extra or fields[3] != "/":
                    continue
                if extra[0] == "cgroup2":
                    found.setdefault("v2", fields[4])
                elif extra[0] == "cgroup" and "memory" in extra[-1].split(","):
                    found.setdefault("v1", fields[4])
    except OSError:
        pass
    return found


@functools.lru_cache(maxsize=1)
def _parent() -> tuple[str, int] | None:
    """Where our sandboxes' groups go: (directory, cgroup version), or None."""
    if os.geteuid() != 0:
        return None
    mounts = _mountpoints()
    try:
        with open("/proc/self/cgroup") as f:
            rows = [line.rstrip("\n").split(":", 2) for line in f if line.strip()]
    except OSError:
        return None
    for _, controllers, path in rows:
        if controllers == "" and "v2" in mounts:
            base = os.path.join(mounts["v2"], path.lstrip("/"))
            try:
                with open(os.path.join(base, "cgroup.subtree_control")) as f:
                    if "memory" in f.read().split():
                        return base, 2
            except OSError:
                pass
    for _, controllers, path in rows:
        if "memory" in controllers.split(",") and "v1" in mounts:
            base = os.path.join(mounts["v1"], path.lstrip("/"))
            if os.access(base, os.W_OK):
                return base, 1
    return None


def create(limit_bytes: int) -> MemoryCgroup | None:
    """A fresh group limited to ``limit_bytes`` (swap included), or None where none can be made."""
    parent = _parent()
    if parent is None:
        return None
    base, version = parent
    path = os.path.join(base, f"hrm-sandbox-{os.getpid()}-{secrets.token_hex(4)}")
    try:
        os.mkdir(path)
    except OSError:
        return None
    group = MemoryCgroup(path, version)
    settings = ([("memory.max", limit_bytes), ("memory.swap.max", 0)] if version == 2 else
                [("memory.limit_in_bytes", limit_bytes), ("memory.memsw.limit_in_bytes", limit_bytes)])
    for name, value in settings:
        target = os.path.join(path, name)
        if not os.path.exists(target) and name != settings[0][0]:
            continue  # no swap accounting on this kernel
        try:
            with open(target, "w") as f:
                f.write(str(value))
        except OSError:
            group.remove()
            return None
    return group


def available() -> bool:
    """Whether this process can give its sandboxes a memory cgroup."""
    group = create(64 << 20)
    if group is None:
        return False
    group.remove()
    return True
