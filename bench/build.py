"""Benchmark: ``corpus.build wiki`` end to end vs raw ``Tokenizer.encode_batch`` on the same text.

    python bench/build.py [--tokens 50_000_000] [--threads 2]

Repeats WikiText-2 valid (../shared/data; each copy's sentences marked with its number) until the corpus holds ``--tokens`` tokens, trains a
byte-level BPE on it, then times (1) ``Tokenizer.encode_batch`` over the same articles in batches
of ``--batch-size`` with ``--threads`` Rayon threads, and (2) the full build (read, normalize,
tokenize, window, split, write Parquet + sidecars, fsync, checksum, register) in a fresh process
with the same threads. Prints both rates and their ratio (target ≥ 0.8).
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
WIKI = REPO.parent / "shared" / "data" / "wikitext2" / "valid.txt"

RAW = """
import os, sys, time, json
os.environ["RAYON_NUM_THREADS"] = sys.argv[3]
from pathlib import Path
from tokenizers import Tokenizer
sys.path.insert(0, sys.argv[5])
from corpus.sources.wiki import _text_articles
texts = [r.data["text"] for r in _text_articles(Path(sys.argv[2]))]
tok = Tokenizer.from_file(sys.argv[1])
batch = int(sys.argv[4])
t0 = time.perf_counter()
n = 0
for i in range(0, len(texts), batch):
    n += sum(len(e.ids) for e in tok.encode_batch(texts[i:i + batch], add_special_tokens=False))
print(json.dumps({"tokens": n, "seconds": time.perf_counter() - t0}))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tokens", type=int, default=50_000_000)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--batch-size", type=int, default=8192)
    p.add_argument("--vocab-size", type=int, default=8192)
    p.add_argument("--max-seq-len", type=int, default=1024)
    p.add_argument("--workdir", type=Path, default=None)
    args = p.parse_args()
    if not WIKI.exists():
        sys.exit(f"needs {WIKI}")
    sys.path.insert(0, str(REPO))
    from corpus.tokenizer import train_tokenizer

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-build-"))
    work.mkdir(parents=True, exist_ok=True)
    tok_path = work / "tokenizer.json"
    text = WIKI.read_text()
    if not tok_path.exists():
        train_tokenizer(text.splitlines(), args.vocab_size).save(str(tok_path))
    from tokenizers import Tokenizer

    per_copy = len(Tokenizer.from_file(str(tok_path)).encode(text, add_special_tokens=False).ids)
    copies = max(1, -(-args.tokens // per_copy))
    corpus = work / f"wiki-x{copies}-marked.txt"
    if not corpus.exists():
        # every sentence of copy k ends with the marker "k": the text stays WikiText, but no
        # window repeats another (the quality gate rightly fails a version of duplicates)
        with open(corpus, "w") as f:
            for k in range(copies):
                f.write(text.replace(" . ", f" . {k} "))
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "RAYON_NUM_THREADS": str(args.threads)}
    raw = subprocess.run([sys.executable, "-c", RAW, str(tok_path), str(corpus), str(args.threads),
                          str(args.batch_size), str(REPO)], capture_output=True, text=True, env=env, check=True)
    raw_result = json.loads(raw.stdout)
    data = work / "data"
    subprocess.run(["rm", "-rf", str(data)], check=True)
    t0 = time.perf_counter()
    build = subprocess.run([sys.executable, "-m", "corpus.build", "wiki", "--from", str(corpus), "--tokenizer",
                            str(tok_path), "--data-dir", str(data), "--max-seq-len", str(args.max_seq_len),
                            "--threads", str(args.threads), "--batch-size", str(args.batch_size), "--quiet"],
                           capture_output=True, text=True, env=env, cwd=REPO)
    build_seconds = time.perf_counter() - t0
    if build.returncode:
        sys.exit(f"build failed ({build.returncode}):\n{build.stdout[-3000:]}{build.stderr}")
    sys.path.insert(0, str(REPO))
    from corpus.catalog import Catalog

    (tokens,), = Catalog(data).query("SELECT tokens FROM versions")
    raw_rate = raw_result["tokens"] / raw_result["seconds"]
    build_rate = tokens / build_seconds
    print(f"corpus: {copies} x WikiText-2 valid, {tokens:,} tokens, threads={args.threads}, "
          f"batch={args.batch_size}, max_seq_len={args.max_seq_len}")
    print(f"raw encode_batch : {raw_result['seconds']:7.2f} s  {raw_rate:12,.0f} tokens/s")
    print(f"corpus.build wiki: {build_seconds:7.2f} s  {build_rate:12,.0f} tokens/s  (end to end, fresh process)")
    print(f"ratio build/raw  : {build_rate / raw_rate:.2f}  (target >= 0.80)")
    assert tokens == raw_result["tokens"], (tokens, raw_result["tokens"])


if __name__ == "__main__":
    main()
