"""What every command shares: one-line errors with exit code 2, and a rich console."""

from __future__ import annotations

import sys
from typing import Callable


def run_cli(body: Callable[[], int | None]) -> int:
    """Run a command body; user errors become one line on stderr and exit code 2."""
    from corpus.errors import UserError

    from corpus.errors import disk_full, is_disk_full

    try:
        return int(body() or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # a full disk anywhere (a DuckDB WAL, a metrics line) is one line too
        if not is_disk_full(exc):
            raise
        name = getattr(exc, "filename", None)
        error = disk_full(str(name) if name else "a file", exc)
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def console():
    from rich.console import Console

    return Console(stderr=False, highlight=False)
