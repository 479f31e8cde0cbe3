"""One look for every progress bar (rich): description, bar, done/total, elapsed time.

Bars draw on stderr only when it is a terminal, and vanish when done (``transient``), so logs
and piped output keep only the lines a command prints on purpose.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator


def progress(enabled: bool = True):
    """A ``rich.progress.Progress`` in the project's columns (disabled off a terminal)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    disable=not (enabled and sys.stderr.isatty()), transient=True)


class Bar:
    """One task of a running :func:`progress`: advance it, rename it, print above it."""

    def __init__(self, bar, task):
        self._bar, self._task = bar, task

    def advance(self, n: int = 1) -> None:
        self._bar.update(self._task, advance=n)

    def describe(self, text: str) -> None:
        self._bar.update(self._task, description=text)

    def print(self, text: str) -> None:
        """A line of output that does not tear the bar (plain ``print`` when the bar is off)."""
        if self._bar.disable:
            print(text, flush=True)
        else:
            self._bar.console.print(text, highlight=False, markup=False)


@contextlib.contextmanager
def progress_bar(description: str, total: int | None, enabled: bool = True) -> Iterator[Bar]:
    """``with progress_bar("check", total=n) as bar: ... bar.advance()``"""
    with progress(enabled) as bar:
        yield Bar(bar, bar.add_task(description, total=total))
