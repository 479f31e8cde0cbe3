"""Benchmark: re-tiering a version under a new rule vs rebuilding it from the raw source.

    python bench/retier.py [--repeat 20] [--threads 2]

Makes a GSM8K-like input by repeating ../shared/data/gsm8k/test.jsonl ``--repeat`` times (each
copy's questions made distinct), trains a small BPE, then times in fresh processes:
(1) ``corpus.build gsm8k`` (read, normalize, tokenize, write, register, quality gate) and
(2) ``corpus.retier VERSION --rule gsm8k-calc@v1`` (read the features column, apply the rule,
write side files, register). Prints both times, the retier rate in rows/s and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GSM8K = REPO.parent / "shared" / "data" / "gsm8k" / "test.jsonl"


def _run(*args: str, threads: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "RAYON_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env, cwd=REPO)
    seconds = time.perf_counter() - t0
    if proc.returncode not in (0, 1):  # 1: built but the quality gate failed; still re-tierable
        sys.exit(f"{' '.join(args[:2])} failed: {proc.stderr.strip() or proc.stdout[-500:]}")
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--workdir", type=Path, default=None)
    args = p.parse_args()
    if not GSM8K.exists():
        sys.exit(f"needs {GSM8K}")
    sys.path.insert(0, str(REPO))
    from corpus.catalog import Catalog
    from corpus.tokenizer import train_tokenizer

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-retier-"))
    work.mkdir(parents=True, exist_ok=True)
    records = [json.loads(line) for line in GSM8K.read_text().splitlines()]
    src = work / "gsm8k.jsonl"
    with open(src, "w") as f:
        for k in range(args.repeat):
            for r in records:
                f.write(json.dumps({"question": f"{r['question']} (copy {k})", "answer": r["answer"]}) + "\n")
    tok = train_tokenizer([r["question"] for r in records] + [r["answer"] for r in records], vocab_size=4096)
    tok.save(str(work / "tokenizer.json"))
    root = work / "data"
    build_s = _run("corpus.build", "gsm8k", "--from", str(src), "--tokenizer", str(work / "tokenizer.json"),
                   "--data-dir", str(root), "--max-seq-len", "1024", "--threads", str(args.threads), "--quiet",
                   threads=args.threads)
    (vid, rows), = Catalog(root).query("SELECT id, rows FROM versions")
    src.unlink()  # the raw source is gone: re-tiering must not need it
    retier_s = _run("corpus.retier", vid, "--rule", "gsm8k-calc@v1", "--data-dir", str(root), "--quiet",
                    threads=args.threads)
    print(f"rows {rows:,}: build {build_s:.2f} s, retier {retier_s:.2f} s ({rows / retier_s:,.0f} rows/s incl. "
          f"process start), retier/build = {retier_s / build_s:.3f}")


if __name__ == "__main__":
    main()
