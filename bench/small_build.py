"""Benchmark: a 1,000-record GSM8K build from the shell, beside the raw tokenization of the same records.

    python bench/small_build.py [--repeat 5] [--workdir DIR]

Trains (or reuses from ``--workdir``) the blueprint's tokenizer, a byte-level BPE of vocab 8192 on
WikiText-2 valid (``python -m corpus.tokenizer train``), then times from the shell, launch to exit
(interpreter start-up and imports included), ``--repeat`` interleaved rounds of:

    python -c pass   the floor no command beats
    raw              a fresh ``python -c`` that imports tokenizers and orjson, reads the records
                     and encode_batch'es the prompts and targets the build tokenizes (question;
                     rationale + ``#### answer``, as corpus/sources/gsm8k.py forms them)
    build            python -m corpus.build gsm8k --from train_sample.jsonl --quiet into a fresh,
                     empty data root each time (a real build, never "already built")

Prints every run, the median, the first round separately (the coldest file cache this bench can
give without root), the load average around each run and ``target <= 2.0 s: PASS/over``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _bench_build():
    """bench/build.py's helpers (a script, not a package module: loaded by path)."""
    if "bench_build" not in sys.modules:
        spec = importlib.util.spec_from_file_location("bench_build", HERE / "build.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["bench_build"] = module  # dataclasses look their module up here
        spec.loader.exec_module(module)
    return sys.modules["bench_build"]


bb = _bench_build()
REPO, DATA = bb.REPO, bb.DATA
RECORDS = DATA / "gsm8k" / "train_sample.jsonl"
TARGET = 2.0

RAW = r"""
import re, sys
import orjson
from tokenizers import Tokenizer
ANSWER = re.compile(r"####\s*(.+?)\s*$")
tok = Tokenizer.from_file(sys.argv[1])
prompts, targets = [], []
with open(sys.argv[2], "rb") as f:
    for line in f:
        if not line.strip():
            continue
        rec = orjson.loads(line)
        answer = rec["answer"].strip()
        m = ANSWER.search(answer)
        rationale = answer[:m.start()].rstrip()
        final = m.group(1).replace(",", "").strip()
        prompts.append(rec["question"].strip())
        targets.append(f"{rationale}\n#### {final}" if rationale else f"#### {final}")
n = sum(len(e.ids) for e in tok.encode_batch(prompts, add_special_tokens=False))
n += sum(len(e.ids) for e in tok.encode_batch(targets, add_special_tokens=False))
print(len(prompts), n)
"""


def train_tokenizer(work: Path, vocab_size: int) -> Path:
    tok = work / f"tokenizer-cli-{vocab_size}.json"
    if not tok.exists():
        # written aside and renamed whole: a bench sharing --workdir never reads half a file
        partial = tok.with_name(f".{os.getpid()}.{tok.name}")
        proc = subprocess.run([sys.executable, "-m", "corpus.tokenizer", "train", "--from", str(bb.WIKI),
                               "--vocab-size", str(vocab_size), "--out", str(partial)],
                              capture_output=True, text=True, env=bb.child_env(), cwd=REPO)
        if proc.returncode:
            bb.fail("python -m corpus.tokenizer train", proc)
        os.replace(partial, tok)
    return tok


def check_build(run, root: Path, records: int) -> str:
    """Exit 0, the version published, every record read; returns what the build registered."""
    if run.proc.returncode:
        bb.fail("corpus.build gsm8k", run.proc)
    read = re.search(r"quarantined (\d+) of (\d+) records", run.proc.stdout)
    printed = re.search(r"version (\S+): (\w+)", run.proc.stdout)
    from corpus.catalog import Catalog

    rows = Catalog(root).query("SELECT id, status, rows, tokens, quarantined FROM versions")
    if len(rows) != 1:
        sys.exit(f"expected one registered version in {root}, found {len(rows)}:\n{run.proc.stdout[-2000:]}")
    vid, status, n_rows, tokens, quarantined = rows[0]
    if status != "published" or (printed and printed.groups() != (vid, "published")):
        sys.exit(f"version {vid} is {status}, not published:\n{run.proc.stdout[-2000:]}")
    n_read = int(read.group(2)) if read else n_rows + quarantined
    if n_read != records:
        sys.exit(f"the build read {n_read} records, the file holds {records}:\n{run.proc.stdout[-2000:]}")
    return f"{vid} published, {n_read} records read, {n_rows:,} rows, {tokens:,} tokens"


def main() -> int:
    bb.stop_on_sigterm()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--records", type=Path, default=RECORDS, help="GSM8K JSON Lines (default: the 1,000-record sample)")
    p.add_argument("--vocab-size", type=int, default=8192)
    p.add_argument("--workdir", type=Path, default=None, help="keeps the tokenizer between runs "
                   "(default: a temporary directory, removed at the end)")
    args = p.parse_args()
    for needed in (bb.WIKI, args.records):
        if not needed.exists():
            sys.exit(f"needs {needed}")
    sys.path.insert(0, str(REPO))
    bb.in_workdir(args.workdir, "bench-small-build-", lambda work: run_bench(args, work))
    return 0


def run_bench(args: argparse.Namespace, work: Path) -> None:
    print(f"bench/small_build.py  {datetime.now(timezone.utc).isoformat(timespec='seconds')}  "
          f"load average at start {bb.loadavg()}")
    tok = train_tokenizer(work, args.vocab_size)
    records = sum(1 for line in args.records.open("rb") if line.strip())
    runs, builder, raw_tokens = bb.with_outputs(work, lambda out: run_rounds(args, tok, records, out))
    report(args, records, runs, builder, raw_tokens)


def run_rounds(args: argparse.Namespace, tok: Path, records: int, out: Path):
    env = bb.child_env()
    builder = bb.CorpusBuild()
    jobs = ["python -c pass", "raw", "build"]
    runs: dict[str, list] = {job: [] for job in jobs}
    raw_tokens = 0
    for r in range(args.repeat):
        order = jobs[r % len(jobs):] + jobs[:r % len(jobs)]
        for job in order:
            if job == "python -c pass":
                run = bb.timed([sys.executable, "-c", "pass"], env)
            elif job == "raw":
                run = bb.timed([sys.executable, "-c", RAW, str(tok), str(args.records)], env)
                if run.proc.returncode:
                    bb.fail("raw tokenization", run.proc)
                n_records, raw_tokens = map(int, run.proc.stdout.split())
                run.note = f"{n_records} records, {raw_tokens:,} tokens"
            else:
                root = out / f"data-{r}"  # fresh and empty: a real build each time
                run = builder.run(["gsm8k", "--from", str(args.records), "--tokenizer", str(tok), "--data-dir",
                                   str(root), "--quiet"], out / f"timings-{r}.json", env)
                run.note = check_build(run, root, records)
                shutil.rmtree(root, ignore_errors=True)
            runs[job].append(run)
            print(f"  round {r + 1}  {job:<15} {run.wall:6.3f} s  cpu {run.cpu:5.2f} s  {run.load()}  {run.note}")
    return runs, builder, raw_tokens


def report(args: argparse.Namespace, records: int, runs: dict[str, list], builder, raw_tokens: int) -> None:
    print()
    print(f"{records:,} GSM8K records ({args.records.name}), tokenizer vocab {args.vocab_size}, "
          f"{args.repeat} interleaved rounds, launch-to-exit wall from the shell")
    print(f"{'':<16} {'median s':>9} {'first s':>8}  all values (s)")
    medians = {job: statistics.median(r.wall for r in rs) for job, rs in runs.items()}
    for job, rs in runs.items():
        print(f"{job:<16} {medians[job]:>9.3f} {rs[0].wall:>8.3f}  {bb.values(rs, 3)}")
    print("first = round 1: the coldest file cache this bench gives (it cannot drop the page cache)")
    print(f"build over raw tokenization: {medians['build'] - medians['raw']:+.3f} s; raw over bare python "
          f"{medians['raw'] - medians['python -c pass']:+.3f} s ({raw_tokens:,} tokens)")
    build = medians["build"]
    print(f"1,000-record build: median {build:.3f} s, target <= {TARGET:.1f} s: {'PASS' if build <= TARGET else 'over'}"
          f" (first run {runs['build'][0].wall:.3f} s: {'PASS' if runs['build'][0].wall <= TARGET else 'over'})")
    i, run = bb.median_run(runs["build"])
    print(f"\ncorpus.build gsm8k (round {i + 1} of {len(runs['build'])}, the median):")
    print("\n".join(bb.phase_lines(run.timings, run.wall, builder.has_timings)))
    print(f"\nload average at end {bb.loadavg()}")


if __name__ == "__main__":
    sys.exit(main())
