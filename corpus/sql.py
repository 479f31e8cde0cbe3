"""``python -m corpus.sql "SELECT ..."``: SQL over the catalog, printed as a table or JSON.

The catalog is an ordinary DuckDB file, so the same queries work in any DuckDB client; plans and
shards are Parquet files that ``read_parquet`` reads in place.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from decimal import Decimal


TABLES_QUERY = """SELECT t.table_name AS name, lower(replace(t.table_type, 'BASE ', '')) AS type,
       string_agg(c.column_name, ', ' ORDER BY c.ordinal_position) AS columns
FROM information_schema.tables t JOIN information_schema.columns c USING (table_schema, table_name)
WHERE t.table_schema = 'main' GROUP BY ALL ORDER BY type, name"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m corpus.sql", description=__doc__.split("\n")[0])
    parser.add_argument("query", nargs="?", help="SQL text (read-only use is expected, writes are allowed)")
    parser.add_argument("--tables", action="store_true", help="list the catalog's tables and views with their columns")
    parser.add_argument("--json", action="store_true", help="print rows as a JSON array of objects")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--limit", type=int, default=1000, help="rows to print in table mode")
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


def _run(args) -> int:
    import duckdb

    from corpus.catalog import Catalog
    from corpus.errors import UserError
    from corpus.paths import data_root

    root = data_root(args.data_dir)
    catalog = Catalog(root)
    with catalog.connect() as con:
        con.execute(f"SET file_search_path = '{root.resolve()}'")
        try:
            cur = con.execute(args.query)
        except duckdb.Error as exc:
            raise UserError(f"query failed: {str(exc).splitlines()[0]}") from None
        if cur.description is None:
            print("ok")
            return 0
        columns = [d[0] for d in cur.description]
        rows = cur.fetchall()
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
