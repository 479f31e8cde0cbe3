"""What every command shares: one-line errors with exit code 2, and a rich console."""

from __future__ import annotations

import sys
from typing import Callable


def run_cli(body: Callable[[], int | None]) -> int:
    """Run a command body; user errors become one line on stderr and exit code 2."""
    from corpus.errors import UserError

    try:
        return int(body() or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def console():
    from rich.console import Console

    return Console(stderr=False, highlight=False)
