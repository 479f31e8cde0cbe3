"""Benchmark: start-up time of the light command paths, beside the bare interpreter.

    python bench/startup.py [--rounds 7]

Times, in fresh processes, interleaved round by round (so a busy machine slows all alike), the
median wall clock of: ``python -c pass`` (the floor no command can beat), ``python -m trainer.run
--help``, ``python -m corpus.build --help`` and ``python -m corpus.sql --help``. Prints each
median, its excess over the bare interpreter, and the load average at the start.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {
    "python -c pass": ["-c", "pass"],
    "trainer.run --help": ["-m", "trainer.run", "--help"],
    "corpus.build --help": ["-m", "corpus.build", "--help"],
    "corpus.sql --help": ["-m", "corpus.sql", "--help"],
}


def _time(args: list[str]) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, *args], capture_output=True, env=env, cwd=REPO)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{args} failed: {proc.stderr.decode()[-400:]}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    for args_ in COMMANDS.values():  # warm the page cache once
        _time(args_)
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.rounds):
        for name, args_ in COMMANDS.items():
            times[name].append(_time(args_))
    floor = statistics.median(times["python -c pass"])
    print(f"load average at start {load:.2f}; median of {args.rounds} interleaved rounds")
    print(f"{'command':<24} {'median s':>9} {'over bare python':>17}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<24} {median:>9.3f} {median - floor:>+16.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
