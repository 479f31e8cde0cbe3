"""Benchmark: ``corpus.build wiki`` end to end beside raw ``encode_batch`` and the ``datasets`` peer.

    python bench/build.py [--tokens 20000000] [--threads 2] [--workers 1 2] [--repeat 3] [--skip-peer]

Repeats WikiText-2 valid (../shared/data; every sentence of copy k is marked with k, so no window
repeats another) until it holds ``--tokens`` tokens and trains a byte-level BPE on it (both cached
in ``--workdir``). The articles are grouped exactly as the build groups them
(``corpus.sources.wiki._text_articles``); each measurement runs in a fresh process:

    raw       Tokenizer.encode_batch over the articles in batches of --batch-size with --threads
              Rayon threads, timed in the child around the encode loop only (no start-up, no read)
    datasets  the peer a user would pick instead: Dataset.from_dict -> map(batched, num_proc =
              --threads) -> save_to_disk, timed by the parent from launch to exit
    build     python -m corpus.build wiki (read, normalize, tokenize, window, split, Parquet +
              sidecars, fsync, checksums, suites, dedup, register), launch to exit, per --workers

A round runs each once, the order rotating round by round so a busy machine slows all alike;
``--repeat K`` reports the median and every value. Prints build/raw (target >= 0.90) and
build/datasets (target >= 1.00), the build's phase split (its ``--timings`` file) and the load
average around every run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
WIKI = DATA / "wikitext2" / "valid.txt"
TARGET_RAW, TARGET_PEER = 0.90, 1.00

RAW = r"""
import json, os, resource, sys, time
os.environ["RAYON_NUM_THREADS"] = sys.argv[3]
from pathlib import Path
from tokenizers import Tokenizer
from corpus.sources.wiki import _text_articles
texts = [r.data["text"] for r in _text_articles(Path(sys.argv[2]))]
tok = Tokenizer.from_file(sys.argv[1])
batch = int(sys.argv[4])
encode = tok.encode_batch_fast if sys.argv[5] == "fast" else tok.encode_batch
cpu = lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
c0, t0 = cpu(), time.perf_counter()
n = 0
for i in range(0, len(texts), batch):
    n += sum(len(e.ids) for e in encode(texts[i:i + batch], add_special_tokens=False))
seconds, cpu_seconds = time.perf_counter() - t0, cpu() - c0
print(json.dumps({"tokens": n, "seconds": seconds, "cpu": cpu_seconds, "articles": len(texts)}))
"""

# num_proc = threads, and each map worker gets its share of Rayon threads (forked workers inherit it)
PEER = r"""
import json, os, sys, time
threads = num_proc = int(sys.argv[3])
os.environ["RAYON_NUM_THREADS"] = str(max(1, threads // num_proc))
from pathlib import Path
import datasets
import pyarrow.compute as pc
from tokenizers import Tokenizer
from corpus.sources.wiki import _text_articles
datasets.disable_progress_bars()
texts = [r.data["text"] for r in _text_articles(Path(sys.argv[2]))]
tok = Tokenizer.from_file(sys.argv[1])
def encode(batch):
    return {"input_ids": [e.ids for e in tok.encode_batch(batch["text"], add_special_tokens=False)]}
ds = datasets.Dataset.from_dict({"text": texts})
ds = ds.map(encode, batched=True, num_proc=num_proc, remove_columns=["text"])
ds.save_to_disk(sys.argv[4])
t0 = time.perf_counter()  # counted after the save, inside the timed process: the cost is printed
n = pc.sum(pc.list_value_length(ds.data.table.column("input_ids"))).as_py()
print(json.dumps({"tokens": n, "count_seconds": time.perf_counter() - t0}))
"""


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", **extra}


@dataclass
class Run:
    """One timed child process: its wall, the CPU it and its children used, the load around it."""

    wall: float
    cpu: float
    load_before: str
    load_after: str
    proc: subprocess.CompletedProcess
    timings: dict | None = None
    tokens: int = 0  # what the run counted: encoded, saved or registered
    info: dict = field(default_factory=dict)  # the child's own JSON line
    note: str = ""

    def load(self) -> str:
        return f"load {self.load_before} -> {self.load_after}"


def timed(cmd: list[str], env: dict, cwd: Path = REPO) -> Run:
    """``cmd`` from launch to exit, with the CPU seconds of the child and everything it waited for."""
    os.sync()  # the previous run's dirty pages are written back now, not during this one
    before = loadavg()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    # its own process group: a bench stopped (Ctrl-C, SIGTERM) takes the child and its workers along,
    # so no orphan goes on loading the machine another measurement runs on
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
                             start_new_session=True)
    try:
        stdout, stderr = child.communicate()
    except BaseException:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        raise
    wall = time.perf_counter() - t0
    proc = subprocess.CompletedProcess(cmd, child.returncode, stdout, stderr)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    return Run(wall, cpu, before, loadavg(), proc)


class CorpusBuild:
    """``python -m corpus.build ...`` with ``--timings`` while corpus.build accepts it."""

    def __init__(self) -> None:
        self.has_timings: bool | None = None  # unknown until the first build answers

    def run(self, argv: list[str], timings_path: Path, env: dict) -> Run:
        cmd = [sys.executable, "-m", "corpus.build", *argv]
        if self.has_timings is not False:
            timings_path.unlink(missing_ok=True)
            run = timed([*cmd, "--timings", str(timings_path)], env)
            refused = run.proc.returncode == 2 and "--timings" in run.proc.stderr
            if not refused:
                self.has_timings = True
                if timings_path.exists():
                    run.timings = json.loads(timings_path.read_text())
                return run
            self.has_timings = False
        return timed(cmd, env)


def phase_lines(timings: dict | None, wall: float, has_timings: bool | None) -> list[str]:
    """The build's phases, longest first, with their thread and share of the launch-to-exit wall."""
    if not has_timings:
        return ["phase split: corpus.build has no --timings yet"]
    if timings is None:
        return ["phase split: corpus.build accepted --timings but wrote no file"]
    facts = [f"{k} {timings[k]:.2f} s" for k in ("wall", "startup", "cpu") if isinstance(timings.get(k), (int, float))]
    if isinstance(timings.get("tokens"), int):
        facts.append(f"{timings['tokens']:,} tokens")
    lines = [f"phase split (launch-to-exit wall {wall:.2f} s; the file says: {', '.join(facts) or 'no totals'})"]
    rows = []
    for name, value in (timings.get("phases") or {}).items():
        value = value if isinstance(value, dict) else {"seconds": value}
        cpu = value.get("cpu")  # the Python thread's CPU in the phase, where the clock records it
        rows.append((float(value.get("seconds") or 0.0), str(name), str(value.get("thread", "?")),
                     f"{cpu:.2f}" if isinstance(cpu, (int, float)) else "-"))
    lines.append(f"  {'phase':<16} {'thread':<12} {'seconds':>8} {'of wall':>8} {'py cpu':>8}")
    for seconds, name, thread, cpu in sorted(rows, reverse=True):
        lines.append(f"  {name:<16} {thread:<12} {seconds:>8.2f} {seconds / wall:>7.0%} {cpu:>8}")
    lines.append(f"  sum {sum(row[0] for row in rows):.2f} s: phases in different threads overlap, so they sum to more "
                 "than wall; py cpu is the phase's Python thread only (the tokenizer's Rayon threads are not in it)")
    clock_wall = timings.get("wall")
    if isinstance(clock_wall, (int, float)):
        main = sum(row[0] for row in rows if row[2] == "main")
        lines.append(f"  main thread: {main:.2f} s in phases, {clock_wall - main:.2f} s of the clock's wall in none "
                     "(waiting on worker processes, or untimed)")
        before = clock_wall + (timings.get("startup") or 0.0)
        # startup runs from the process's birth to the clock's start, so this is spawn plus what
        # follows the report: interpreter exit, module teardown
        lines.append(f"  after the clock's report (exit) and before the process began (spawn): {wall - before:.2f} s")
    return lines


def median_run(runs: list[Run]) -> tuple[int, Run]:
    """The run with the median wall (the lower middle one for an even count)."""
    order = sorted(range(len(runs)), key=lambda i: runs[i].wall)
    i = order[(len(order) - 1) // 2]
    return i, runs[i]


def values(runs: list[Run], digits: int = 2) -> str:
    return "[" + " ".join(f"{r.wall:.{digits}f}" for r in runs) + "]"


def verdict(ratio: float, target: float) -> str:
    return "PASS" if ratio >= target else "below"


def fork_notes(stderr: str) -> list[str]:
    """Warnings worth a reader's eye (tokenizers' parallelism after fork, datasets' num_proc)."""
    keep = ("parallelism", "warn", "num_proc", "deadlock")
    return sorted({line.strip() for line in stderr.splitlines() if any(k in line.lower() for k in keep)})


def fail(what: str, proc: subprocess.CompletedProcess) -> None:
    sys.exit(f"{what} failed ({proc.returncode}):\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")


def prepare_corpus(work: Path, tokens: int, vocab_size: int) -> tuple[Path, Path, int]:
    """The marked, repeated WikiText-2 valid and its tokenizer (both reused from ``work``)."""
    from tokenizers import Tokenizer

    from corpus.tokenizer import train_tokenizer

    tok_path = work / f"tokenizer-{vocab_size}.json"
    text = WIKI.read_text()
    if not tok_path.exists():
        # written aside and renamed whole: a bench sharing --workdir never reads half a file
        partial = tok_path.with_name(f".{os.getpid()}.{tok_path.name}")
        train_tokenizer(text.splitlines(), vocab_size).save(str(partial))
        os.replace(partial, tok_path)
    per_copy = len(Tokenizer.from_file(str(tok_path)).encode(text, add_special_tokens=False).ids)
    copies = max(1, -(-tokens // per_copy))
    corpus = work / f"wiki-x{copies}-marked.txt"
    if not corpus.exists():
        # every sentence of copy k ends with the marker "k": the text stays WikiText, but no
        # window repeats another (the quality gate rightly fails a version of duplicates)
        partial = corpus.with_name(f".{os.getpid()}.{corpus.name}")
        with open(partial, "w") as f:
            for k in range(copies):
                f.write(text.replace(" . ", f" . {k} "))
        os.replace(partial, corpus)
    return corpus, tok_path, copies


def stop_on_sigterm() -> None:
    """SIGTERM unwinds like Ctrl-C: :func:`timed` kills the running child's group, workdirs are removed."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def main() -> None:
    stop_on_sigterm()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tokens", type=int, default=20_000_000)
    p.add_argument("--threads", type=int, default=2, help="tokenizer threads (raw, peer's num_proc, build)")
    p.add_argument("--workers", type=int, nargs="+", default=[1], metavar="N",
                   help="corpus.build --workers; one build per value (e.g. --workers 1 2)")
    p.add_argument("--batch-size", type=int, default=8192)
    p.add_argument("--vocab-size", type=int, default=8192)
    p.add_argument("--max-seq-len", type=int, default=1024)
    p.add_argument("--workdir", type=Path, default=None, help="keeps the corpus and tokenizer between runs "
                   "(default: a temporary directory, removed at the end)")
    p.add_argument("--repeat", type=int, default=1, metavar="K", help="rounds; the median and all values are shown")
    p.add_argument("--skip-peer", action="store_true", help="no datasets peer")
    p.add_argument("--executor", nargs="+", choices=["local", "ray"], default=["local"],
                   help="corpus.build --executor; one build per executor and --workers value (ray: a local "
                        "cluster of --workers CPUs started by the build, its start-up included)")
    args = p.parse_args()
    if not WIKI.exists():
        sys.exit(f"needs {WIKI}")
    sys.path.insert(0, str(REPO))
    in_workdir(args.workdir, "bench-build-", lambda work: run_bench(args, work))


def in_workdir(workdir: Path | None, prefix: str, body) -> None:
    """``body(work)`` in ``workdir`` (kept: the corpus and tokenizer are reused), or in a
    temporary directory removed afterwards."""
    own = workdir is None
    work = Path(tempfile.mkdtemp(prefix=prefix)) if own else workdir
    work.mkdir(parents=True, exist_ok=True)
    try:
        body(work)
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)


def run_bench(args: argparse.Namespace, work: Path) -> None:
    print(f"bench/build.py  {datetime.now(timezone.utc).isoformat(timespec='seconds')}  "
          f"{os.cpu_count()} CPUs  load average at start {loadavg()}")
    corpus, tok_path, copies = prepare_corpus(work, args.tokens, args.vocab_size)
    runs, builder, notes = with_outputs(work, lambda out: run_rounds(args, corpus, tok_path, out))
    report(args, copies, corpus, runs, builder, notes)


def with_outputs(work: Path, body):
    """``body(out)`` with ``out`` this invocation's fresh output folder under ``work`` (another
    bench may share ``--workdir``), removed afterwards."""
    out = work / f"out-{os.getpid()}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    try:
        return body(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def run_rounds(args: argparse.Namespace, corpus: Path, tok_path: Path, out: Path):
    env = child_env(RAYON_NUM_THREADS=str(args.threads))
    builder = CorpusBuild()
    jobs = ["raw", "raw fast"] + ([] if args.skip_peer else ["datasets"]) + [
        f"build w={w}" + ("" if executor == "local" else f"/{executor}") for executor in args.executor
        for w in args.workers]
    runs: dict[str, list[Run]] = {job: [] for job in jobs}
    notes: set[str] = set()
    for r in range(args.repeat):
        order = jobs[r % len(jobs):] + jobs[:r % len(jobs)]
        print(f"round {r + 1} of {args.repeat}: {', '.join(order)}")
        for job in order:
            if job.startswith("raw"):
                run = timed([sys.executable, "-c", RAW, str(tok_path), str(corpus), str(args.threads),
                             str(args.batch_size), "fast" if job == "raw fast" else "plain"], env)
                if run.proc.returncode:
                    fail("raw encode_batch", run.proc)
                run.info = json.loads(run.proc.stdout)
                run.tokens = run.info["tokens"]
                run.note = (f"(process {run.wall:.2f} s) encode loop cpu {run.info['cpu']:.2f} s = "
                            f"{run.info['cpu'] / run.info['seconds']:.2f} of {args.threads} threads busy")
                run.wall = run.info["seconds"]  # the baseline is the encode loop only
            elif job == "datasets":
                dest, tmp = out / f"peer-{r}", out / f"peer-tmp-{r}"
                tmp.mkdir()
                run = timed([sys.executable, "-c", PEER, str(tok_path), str(corpus), str(args.threads), str(dest)],
                            child_env(HF_DATASETS_CACHE=str(tmp / "hf-cache"), TMPDIR=str(tmp),
                                      HF_DATASETS_DISABLE_PROGRESS_BARS="1"))
                if run.proc.returncode:
                    fail("datasets peer", run.proc)
                run.info = json.loads(run.proc.stdout.strip().splitlines()[-1])
                run.tokens = run.info["tokens"]
                run.note = (f"{run.tokens:,} tokens saved (counted in {run.info['count_seconds'] * 1000:.0f} ms "
                            "after the save)")
                notes.update(fork_notes(run.proc.stderr))
                shutil.rmtree(dest, ignore_errors=True)
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                workers, _, executor = job.split("=")[1].partition("/")
                workers, executor = int(workers), executor or "local"
                root = out / f"build-w{workers}-{executor}-{r}"
                run = builder.run(["wiki", "--from", str(corpus), "--tokenizer", str(tok_path), "--data-dir",
                                   str(root), "--max-seq-len", str(args.max_seq_len),
                                   # the same CPUs in all: each worker process gets its share
                                   "--threads", str(max(1, args.threads // workers)),
                                   "--workers", str(workers), "--batch-size", str(args.batch_size), "--quiet",
                                   "--executor", executor],
                                  out / f"timings-w{workers}-{executor}-{r}.json", env)
                if run.proc.returncode:
                    fail(f"corpus.build (--workers {workers})", run.proc)
                notes.update(fork_notes(run.proc.stderr))
                from corpus.catalog import Catalog

                (tokens,), = Catalog(root).query("SELECT sum(tokens) FROM versions")
                run.tokens = int(tokens)
                run.note = f"{run.tokens:,} tokens registered"
                shutil.rmtree(root, ignore_errors=True)
            runs[job].append(run)
            print(f"  {job:<12} {run.wall:7.2f} s  cpu {run.cpu:6.2f} s  {run.load()}  {run.note}")
    return runs, builder, notes


def report(args, copies, corpus: Path, runs: dict[str, list[Run]], builder: CorpusBuild, notes: set[str]) -> None:
    raw_runs = runs["raw"]
    tokens = raw_runs[0].tokens
    print()
    articles = raw_runs[0].info["articles"]
    print(f"corpus: {copies} x WikiText-2 valid (sentences marked per copy), {articles:,} articles, "
          f"{corpus.stat().st_size / 1e6:.1f} MB, {tokens:,} tokens; vocab {args.vocab_size}, "
          f"max_seq_len {args.max_seq_len}")
    print(f"threads={args.threads} (a build with --workers W runs W processes of threads/W tokenizer threads)  "
          f"workers={' '.join(map(str, args.workers))}  batch={args.batch_size}  "
          f"repeat={args.repeat}  load average now {loadavg()}")
    if "datasets" in runs:
        num_proc = args.threads
        print(f"datasets peer: Dataset.from_dict -> map(batched, batch_size=1000 (its default), num_proc={num_proc}, "
              f"RAYON_NUM_THREADS={max(1, args.threads // num_proc)} in each worker) -> save_to_disk "
              "(no fsync, checksums, split or windows)")
    print(f"{'':<22} {'median s':>9} {'tokens/s':>12}  all values (s)")
    medians = {job: statistics.median(r.wall for r in rs) for job, rs in runs.items()}
    labels = {"raw": "raw encode_batch", "raw fast": "raw encode_batch_fast", "datasets": "datasets peer"}
    for job, rs in runs.items():
        label = labels[job] if job in labels else f"corpus.build {job.split()[1]}"
        how = "encode loop only, in-process" if job.startswith("raw") else "launch to exit"
        print(f"{label:<22} {medians[job]:>9.2f} {tokens / medians[job]:>12,.0f}  {values(rs)}  ({how})")
    cpu = statistics.median(r.info["cpu"] for r in raw_runs)
    print(f"raw baseline's own cpu {cpu:.2f} s in the encode loop = {cpu / medians['raw']:.2f} x wall "
          f"({args.threads} threads: near {args.threads} means it was not starved)")
    builds = [job for job in runs if job.startswith("build")]
    for job in builds:
        w = job.split("=")[1]
        ratio = medians["raw"] / medians[job]
        print(f"build/raw       workers={w}: {ratio:.2f}  (target >= {TARGET_RAW:.2f}) {verdict(ratio, TARGET_RAW)}")
        if "datasets" in medians:
            ratio = medians["datasets"] / medians[job]
            print(f"build/datasets  workers={w}: {ratio:.2f}  (target >= {TARGET_PEER:.2f}) "
                  f"{verdict(ratio, TARGET_PEER)}")
        ratio = medians["raw fast"] / medians[job]
        print(f"build/raw_fast  workers={w}: {ratio:.2f}  (no target: the build tokenizes with encode_batch_fast, "
              "the same ids without character offsets; this is its overhead over that call alone)")
    for job in builds[1:]:
        first = builds[0]
        print(f"{job} vs {first}: wall {medians[job]:.2f} s vs {medians[first]:.2f} s, "
              f"{medians[first] / medians[job]:.2f}x the speed (what the extra processes buy on this machine)")
    for job in builds:
        i, run = median_run(runs[job])
        print(f"\ncorpus.build {job.split()[1]} (round {i + 1} of {len(runs[job])}, the median):")
        print("\n".join(phase_lines(run.timings, run.wall, builder.has_timings)))
    if notes:
        print("\nchildren's warnings:\n" + "\n".join(f"  {n}" for n in sorted(notes)))
    wrong = [f"{job} round {i + 1}: {r.tokens:,}" for job, rs in runs.items() for i, r in enumerate(rs)
             if r.tokens != tokens]
    if wrong:
        sys.exit(f"token counts differ from raw's {tokens:,}: " + ", ".join(wrong))
    print(f"\ntoken counts equal in every run ({', '.join(runs)}): {tokens:,}; load average at end {loadavg()}")


if __name__ == "__main__":
    main()
