"""Where a build's time goes: wall seconds per phase, per thread, for ``corpus.build --timings``.

A build overlaps its phases (the encoder thread tokenizes the next batch while the main thread
writes this one), so the phases of different threads add up to more than the wall time; within
one thread they do not overlap. ``wait`` is the main thread idle on the encoder: when it is the
largest main-thread phase, tokenization is the critical path.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import threading
import time
from pathlib import Path
from typing import Iterator


class PhaseClock:
    """Accumulates wall seconds per ``(phase, thread)``; thread-safe, cheap enough per batch."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self._seconds: dict[str, float] = {}
        self._threads: dict[str, str] = {}
        self._cpu: dict[str, float] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def phase(self, name: str, thread: str = "main") -> Iterator[None]:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0, thread, time.thread_time() - c0)

    def start(self, name: str, thread: str = "main"):
        """Time phase ``name`` from now until the returned function is called (for a phase that
        ends in another block than it began); calling it again does nothing."""
        t0, c0 = time.perf_counter(), time.thread_time()
        done = []

        def stop() -> None:
            if not done:
                done.append(True)
                self.add(name, time.perf_counter() - t0, thread, time.thread_time() - c0)

        return stop

    def add(self, name: str, seconds: float, thread: str = "main", cpu: float | None = None) -> None:
        """``seconds`` of wall in phase ``name``; ``cpu``: this Python thread's CPU seconds in it
        (time.thread_time; the tokenizer's own threads are not counted)."""
        with self._lock:
            self._seconds[name] = self._seconds.get(name, 0.0) + seconds
            self._threads.setdefault(name, thread)
            if cpu is not None:
                self._cpu[name] = self._cpu.get(name, 0.0) + cpu

    def totals(self) -> dict[str, tuple[float, float | None]]:
        """``{phase: (wall, cpu)}``: what a worker process sends back with its batch."""
        return {name: (s, self._cpu.get(name)) for name, s in self._seconds.items()}

    def seconds(self, name: str) -> float:
        return self._seconds.get(name, 0.0)

    def report(self, **extra) -> dict:
        """Wall since the clock started, interpreter start-up before it (Linux), process CPU
        (children included) and every phase."""
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall, age = time.perf_counter() - self.started, process_age()
        out = {
            "wall": wall,
            "startup": age - wall if age else None,
            "cpu": own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime,
            "phases": {name: {"seconds": round(s, 4), "thread": self._threads[name],
                              **({"cpu": round(self._cpu[name], 4)} if name in self._cpu else {})}
                       for name, s in sorted(self._seconds.items(), key=lambda kv: -kv[1])},
        }
        out.update(extra)
        return out

    def line(self, top: int = 6) -> str:
        """The largest phases in one line, e.g. ``encode 29.1 (encoder), write 1.2, ...``."""
        items = sorted(self._seconds.items(), key=lambda kv: -kv[1])[:top]
        return ", ".join(f"{name} {s:.2f}" + (f" ({self._threads[name]})" if self._threads[name] != "main" else "")
                         for name, s in items)

    def write(self, path: str | Path, **extra) -> None:
        Path(path).write_text(json.dumps(self.report(**extra), indent=1) + "\n")


def process_age() -> float | None:
    """Seconds since this process started (from /proc; None elsewhere): the interpreter start-up
    and imports before any clock of ours could run."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        start_ticks = int(fields[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
