"""The last step of a build: decide whether a registered version may be used downstream.

A version is registered with status ``validating``; :func:`publish` runs its expectation suites
(:mod:`corpus.quality.validate`, native engine by default) and sets ``published`` when every
shard passes, else ``failed`` with the failing expectations listed in the ``validations``
table. Nothing downstream (mixer, trainer) accepts anything but ``published``: they call
:func:`require_published`. Running ``publish`` again (``python -m corpus.quality check``, with
the GX engine) re-validates, so a shard edited after publishing demotes its version.
"""

from __future__ import annotations

import json
from pathlib import Path

from corpus.catalog import Catalog
from corpus.errors import UserError


def publish(catalog: Catalog, root: Path, version_id: str, facts: dict | None = None,
            engine: str = "native") -> tuple[str, list[str]]:
    """Validate ``version_id`` with ``engine`` and set its status; returns (status, failure descriptions).

    ``facts``: shard path → facts a build took on the rows it wrote (read back and compared),
    so they are not computed from the files a second time. A build publishes with the native
    engine (numpy, milliseconds); ``corpus.quality check`` and CI re-validate with
    ``engine="gx"``, the Great Expectations reference. Both run the same suites.
    """
    from corpus.quality.validate import validate_version

    outcome = validate_version(catalog, Path(root), version_id, facts=facts, engine=engine)
    status = "published" if outcome.success else "failed"
    with catalog.connect() as con:
        con.execute("UPDATE versions SET status = ? WHERE id = ?", [status, version_id])
    return status, outcome.failures()


def failing_expectations(catalog: Catalog, version_id: str, limit: int = 3, severity: str = "critical") -> list[str]:
    """The recorded failures of a version, one line each (at most ``limit``, then a count).

    ``severity="warning"`` gives the non-blocking ones instead (reported, never gating).
    """
    from corpus.quality.results import describe

    lines = []
    for row in catalog.query_dicts(
            "SELECT shard, suite, failed_expectations FROM validations WHERE version = ? "
            "ORDER BY shard, suite", [version_id]):
        for f in json.loads(row["failed_expectations"] or "[]"):
            if f.get("severity", "critical") == severity:
                lines.append(f"{Path(row['shard']).name}: {row['suite']}: {describe(f)}")
    if len(lines) > limit:
        lines = lines[:limit] + [f"... and {len(lines) - limit} more"]
    return lines


def require_published(catalog: Catalog, version_id: str) -> dict:
    """The version's catalog row, or a one-line error saying why it may not be used."""
    row = catalog.version(version_id)
    if row is None:
        raise UserError(f"unknown version {version_id}")
    if row["status"] != "published":
        why = "; ".join(failing_expectations(catalog, version_id)) if row["status"] == "failed" else ""
        raise UserError(f"version {version_id} ({row['source']}) is {row['status']}, not published"
                        + (f": failing: {why}" if why else "") + "; see python -m corpus.quality report")
    return row
