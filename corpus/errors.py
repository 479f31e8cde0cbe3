"""Errors a user can act on: every command prints them as one line and exits 2, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or environment (missing file, bad flag, unknown source)."""

    exit_code = 2


class CatalogBusy(UserError):
    """The catalog stayed locked by another process for longer than the retry budget."""


class DiskFull(UserError):
    """A write failed for lack of space. Every write is temp-then-rename and every registration
    one transaction, so nothing incomplete was published and nothing earlier was lost."""


DISK_FULL_WORDS = ("No space left on device", "Disk quota exceeded")
SHORT_WRITE = __import__("re").compile(r"^\d+ requested and \d+ written$")


def is_disk_full(exc: BaseException) -> bool:
    """ENOSPC/EDQUOT from the OS, or the same reported by DuckDB or Arrow in their own words."""
    import errno

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(exc, OSError) and exc.errno is None and SHORT_WRITE.search(str(exc)):
        return True  # numpy's tofile() on a full disk: "659740 requested and 122816 written"
    return any(word in str(exc) for word in DISK_FULL_WORDS)


def disk_full(what: str, exc: BaseException | None = None) -> DiskFull:
    """The one line for a full disk: what could not be written, and that nothing was lost."""
    cause = ""
    if exc is not None:
        first = (str(exc).strip().splitlines() or [""])[0]
        cause = f" ({first[:200]})" if first else ""
    return DiskFull(f"{what} could not be written: the disk is full{cause}; nothing incomplete was "
                    f"registered and nothing earlier was lost (the catalog, published versions and the "
                    f"last good checkpoint are intact): free space and run again")


class BadRecord(Exception):
    """One input record cannot become an example; it is quarantined with this reason.

    ``field`` names the offending field (dotted path) when there is one.
    """

    def __init__(self, reason: str, field: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.reason}" if self.field else self.reason
