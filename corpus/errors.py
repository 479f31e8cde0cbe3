"""Errors a user can act on: every command prints them as one line and exits 2, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or environment (missing file, bad flag, unknown source)."""

    exit_code = 2


class CatalogBusy(UserError):
    """The catalog stayed locked by another process for longer than the retry budget."""


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
