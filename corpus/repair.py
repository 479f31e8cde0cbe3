"""``python -m corpus.repair "SQL" --yes``: the rare, deliberate write to the catalog.

``corpus.sql`` is read-only on purpose; when a catalog row really must change (a version
forgotten by hand, a status reset), this command does it — in one transaction, after copying
the catalog to ``catalog.duckdb.bak-<UTC time>`` beside it, and only with ``--yes``. File
access stays confined to the data root as in ``corpus.sql``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from datetime import datetime, timezone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m corpus.repair", description=__doc__.split("\n")[0])
    parser.add_argument("statement", help="SQL to run read-write in one transaction")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--yes", action="store_true", help="really write (a backup of the catalog is made first)")
    args = parser.parse_args(argv)

    from corpus.cli import run_cli

    return run_cli(lambda: _run(args))


def _run(args) -> int:
    import duckdb

    from corpus.atomic import fsync_file
    from corpus.catalog import Catalog
    from corpus.errors import UserError
    from corpus.paths import data_root
    from corpus.sql import confine

    root = data_root(args.data_dir)
    catalog = Catalog(root)
    if not catalog.path.exists():
        raise UserError(f"no catalog at {catalog.path}")
    if not args.yes:
        raise UserError("corpus.repair writes to the catalog: pass --yes to run it (a backup is made first)")
    with catalog.connect() as con:  # holds the write lock: the backup is of a quiet catalog
        con.execute("CHECKPOINT")
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        backup = catalog.path.with_name(f"{catalog.path.name}.bak-{stamp}")
        shutil.copyfile(catalog.path, backup)
        fsync_file(backup)
        confine(con, root)
        con.execute("BEGIN TRANSACTION")
        try:
            cur = con.execute(args.statement)
            changed = cur.fetchall() if cur.description else []
            con.execute("COMMIT")
        except duckdb.Error as exc:
            from corpus.catalog import rollback

            rollback(con)
            raise UserError(f"repair failed, nothing changed: {str(exc).splitlines()[0]}") from None
    print(f"ok ({changed[0][0] if changed and len(changed[0]) == 1 else len(changed)} affected); backup: {backup}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
