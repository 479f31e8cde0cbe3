"""``python -m corpus.sql "SELECT ..."``: read-only SQL over the catalog, printed as a table or JSON.

An audit tool must not be able to forge or destroy what it audits, so the catalog is opened
read-only, only reading statements run (SELECT, EXPLAIN, PRAGMA, CALL), and DuckDB's file
access is limited to the data root and then locked (``allowed_directories``,
``enable_external_access = false``, ``lock_configuration``): ``COPY ... TO``, ``ATTACH``,
``read_csv('/etc/passwd')`` and extension loading all fail in one line. Relative paths
(``read_parquet('shards/...')``) resolve against the data root. A query that holds the
catalog's lock longer than builds wait for it (``HRM_CATALOG_TIMEOUT``, or ``--max-seconds``)
is stopped and says so. The rare repair goes through ``python -m corpus.repair``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from datetime import date, datetime
from decimal import Decimal

READING = frozenset({"SELECT", "EXPLAIN", "PRAGMA", "CALL"})

TABLES_QUERY = """SELECT t.table_name AS name, lower(replace(t.table_type, 'BASE ', '')) AS type,
       string_agg(c.column_name, ', ' ORDER BY c.ordinal_position) AS columns
FROM information_schema.tables t JOIN information_schema.columns c USING (table_schema, table_name)
WHERE t.table_schema = 'main' GROUP BY ALL ORDER BY type, name"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m corpus.sql", description=__doc__.split("\n")[0])
    parser.add_argument("query", nargs="?", help="SQL text (reading statements only; see python -m corpus.repair)")
    parser.add_argument("--tables", action="store_true", help="list the catalog's tables and views with their columns")
    parser.add_argument("--json", action="store_true", help="print rows as a JSON array of objects")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--limit", type=int, default=1000, help="rows to print in table mode")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="stop a query after this long (default: the catalog retry budget, "
                             "HRM_CATALOG_TIMEOUT, since builds wait that long for the lock)")
    args = parser.parse_args(argv)
    if args.tables == bool(args.query):
        parser.error("give a QUERY or --tables")
    if args.tables:
        args.query = TABLES_QUERY

    from corpus.cli import run_cli

    return run_cli(lambda: _run(args))


def _plain(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value) if value % 1 else int(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


def confine(con, root) -> None:
    """Limit ``con``'s file access to ``root`` and lock its configuration (no way back)."""
    quoted = str(root.resolve()).replace("'", "''")
    con.execute(f"SET allowed_directories = ['{quoted}/']")
    con.execute(f"SET file_search_path = '{quoted}'")
    con.execute("SET enable_external_access = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET lock_configuration = true")


def refuse_writes(con, query: str) -> None:
    """One line for anything but a reading statement (checked before anything runs)."""
    import duckdb

    from corpus.errors import UserError

    try:
        statements = con.extract_statements(query)
    except duckdb.Error as exc:
        raise UserError(f"query failed: {str(exc).splitlines()[0]}") from None
    for st in statements:
        kind = st.type.name
        if kind not in READING:
            raise UserError(f"corpus.sql is read-only: {kind} statements are refused "
                            f"(for a deliberate repair use python -m corpus.repair)")


def _run(args) -> int:
    import duckdb

    from corpus.catalog import Catalog
    from corpus.errors import UserError
    from corpus.paths import data_root

    from corpus.flags import check_range

    check_range("--limit", args.limit, 0, None)
    check_range("--max-seconds", args.max_seconds, 0, None, lo_open=True)
    root = data_root(args.data_dir).resolve()  # before the chdir: a relative root would move with it
    catalog = Catalog(root)
    limit_s = catalog.timeout if args.max_seconds is None else args.max_seconds
    with catalog.connect(read_only=True) as con:
        os.chdir(root)  # relative paths in queries and views are the data root's
        confine(con, root)
        refuse_writes(con, args.query)
        timer = threading.Timer(limit_s, con.interrupt)
        timer.daemon = True
        timer.start()
        try:
            cur = con.execute(args.query)
            columns = [d[0] for d in cur.description] if cur.description else None
            rows = cur.fetchall() if columns else []
        except duckdb.InterruptException:
            raise UserError(f"query stopped after {limit_s:g} s: it held the catalog lock that builds wait for "
                            f"(pass --max-seconds to allow longer)") from None
        except duckdb.Error as exc:
            raise UserError(f"query failed: {str(exc).splitlines()[0]}") from None
        finally:
            timer.cancel()
    if columns is None:
        print("ok")
        return 0
    if args.json:
        print(json.dumps([{c: _plain(v) for c, v in zip(columns, row)} for row in rows], indent=1, default=str))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(show_edge=False, header_style="bold")
    for c in columns:
        table.add_column(c)
    for row in rows[: args.limit]:
        table.add_row(*("NULL" if v is None else str(_plain(v)) for v in row))
    console = Console(highlight=False, width=max(120, Console().width))
    console.print(table)
    if len(rows) > args.limit:
        console.print(f"... {len(rows) - args.limit} more rows (use --limit or --json)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
