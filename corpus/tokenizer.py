"""Byte-level BPE tokenizers: train one, identify it by sha256, install it into the data root.

    python -m corpus.tokenizer train --from wiki.txt --vocab-size 8192 --out tokenizer.json
    python -m corpus.tokenizer train --synthetic 20000 --vocab-size 2048 --out tokenizer.json

A build never trusts a path: it hashes the file, copies it to ``data/tokenizers/<sha256>.json``
and records the sha with the version, so a version always knows exactly how it was tokenized.
"""

from __future__ import annotations

import argparse
import glob
import json
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path
from typing import Iterator

from corpus.atomic import atomic_path, sha256_file
from corpus.errors import UserError

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
SPECIAL_TOKENS = [PAD, BOS, EOS]


@dataclass(frozen=True)
class TokenizerInfo:
    """A tokenizer file with the facts every version records about it."""

    path: Path
    sha256: str
    vocab_size: int
    pad_id: int
    bos_id: int
    eos_id: int

    @cached_property
    def tokenizer(self):
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(self.path))

    @cached_property
    def token_nbytes(self):
        """UTF-8 bytes each token id stands for, when that is fixed (byte-level BPE without a
        normalizer: one character of a token = one byte); else None. Lets the builder cut text at
        token boundaries with numpy instead of per-token Python offsets."""
        import numpy as np

        spec = json.loads(self.tokenizer.to_str())
        if spec.get("normalizer") is not None or (spec.get("pre_tokenizer") or {}).get("type") != "ByteLevel":
            return None
        nbytes = np.zeros(self.vocab_size, dtype=np.int64)
        for token, i in self.tokenizer.get_vocab(with_added_tokens=False).items():
            nbytes[i] = len(token)
        for i, added in self.tokenizer.get_added_tokens_decoder().items():
            nbytes[i] = len(added.content.encode("utf-8"))
        return nbytes

    @property
    def token_dtype(self) -> str:
        """Narrowest unsigned dtype for the memory-map sidecars."""
        return "uint16" if self.vocab_size <= 1 << 16 else "uint32"


def load_tokenizer(path: str | Path) -> TokenizerInfo:
    """Open and check a ``tokenizer.json``; a bad path or file is one clear error."""
    from tokenizers import Tokenizer

    path = Path(path)
    if not path.is_file():
        raise UserError(f"tokenizer not found: {path}")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises plain Exception subclasses
        raise UserError(f"unreadable tokenizer {path}: {str(exc).splitlines()[0]}") from None
    ids = {name: tok.token_to_id(name) for name in SPECIAL_TOKENS}
    missing = [name for name, i in ids.items() if i is None]
    if missing:
        raise UserError(f"tokenizer {path} lacks special tokens {missing} (train it with corpus.tokenizer)")
    try:  # a WordLevel/WordPiece model without its unknown token fails on the first unseen word
        tok.encode("zq\u2603\U0001f600 0xff", add_special_tokens=False)
    except Exception as exc:
        raise UserError(f"tokenizer {path} cannot encode text it has not seen: {str(exc).splitlines()[0]} "
                        f"(a WordLevel or WordPiece model needs an unk token)") from None
    return TokenizerInfo(
        path=path,
        sha256=sha256_file(path),
        vocab_size=tok.get_vocab_size(with_added_tokens=True),
        pad_id=ids[PAD],
        bos_id=ids[BOS],
        eos_id=ids[EOS],
    )


def install_tokenizer(info: TokenizerInfo, root: Path, catalog=None) -> TokenizerInfo:
    """Copy the tokenizer to ``<root>/tokenizers/<sha>.json`` and register it (idempotent)."""
    from corpus.paths import tokenizer_dir

    dest = tokenizer_dir(root) / f"{info.sha256}.json"
    if not dest.exists():
        with atomic_path(dest) as tmp:
            shutil.copyfile(info.path, tmp)
    installed = TokenizerInfo(dest, info.sha256, info.vocab_size, info.pad_id, info.bos_id, info.eos_id)
    if catalog is not None:
        rel = str(dest.relative_to(root))
        with catalog.connect() as con:
            con.execute(
                "INSERT INTO tokenizers VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [info.sha256, rel, info.vocab_size, info.pad_id, info.bos_id, info.eos_id, datetime.now(timezone.utc)],
            )
            con.execute(
                "INSERT INTO files VALUES (?, NULL, 'tokenizer', ?, ?) ON CONFLICT DO NOTHING",
                [rel, info.sha256, dest.stat().st_size],
            )
    return installed


def tokenizer_for_sha(root: Path, sha: str) -> TokenizerInfo:
    """The data root's copy of tokenizer ``sha``, refused when its bytes no longer hash to it
    (an edit that stays valid JSON would otherwise tokenize differently from the shards)."""
    from corpus.paths import tokenizer_dir

    info = load_tokenizer(tokenizer_dir(root) / f"{sha}.json")
    if info.sha256 != sha:
        raise UserError(f"{info.path}: damaged (its sha256 {info.sha256[:12]}… is not the {sha[:12]}… it is named "
                        f"by); copy the original tokenizer.json back there (python -m corpus.verify lists it)")
    return info


# -- training ---------------------------------------------------------------------------------

def _texts_from_file(path: Path, fields: list[str] | None) -> Iterator[str]:
    suffixes = "".join(path.suffixes[-2:])
    if path.suffix == ".txt":
        with open(path, encoding="utf-8", errors="replace") as f:
            yield from f
    elif path.suffix in (".jsonl", ".json") or suffixes == ".jsonl.gz":
        from corpus.loading import iter_json_records

        for rec in iter_json_records(path):
            if isinstance(rec.data, dict):
                yield from _strings(rec.data, fields)
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        for column in table.column_names:
            if (fields is None or column in fields) and table.schema.field(column).type in ("string", "large_string"):
                yield from (s for s in table.column(column).to_pylist() if s)
    else:
        raise UserError(f"cannot read text from {path}: use .txt, .json, .jsonl(.gz) or .parquet")


def _strings(record: dict, fields: list[str] | None) -> Iterator[str]:
    for key, value in record.items():
        if fields is not None and key not in fields:
            continue
        if isinstance(value, str) and value:
            yield value


def train_tokenizer(texts, vocab_size: int, min_frequency: int = 2):
    """Train a byte-level BPE with pad/bos/eos specials; returns a ``tokenizers.Tokenizer``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=sys.stderr.isatty(),
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def _expand(patterns: list[str]) -> list[Path]:
    out: list[Path] = []
    for pattern in patterns:
        p = Path(pattern)
        if p.is_dir():
            out.extend(sorted(q for q in p.rglob("*") if q.is_file()))
        else:
            matches = sorted(glob.glob(pattern))
            if not matches:
                raise UserError(f"input not found: {pattern}")
            out.extend(Path(m) for m in matches)
    return out


def _synthetic_texts(count: int, seed: int) -> Iterator[str]:
    from corpus.synthetic import TASKS, generate

    for task in sorted(TASKS):
        for item in generate(task, count // max(1, len(TASKS)), tiers=[0, 1, 2, 3], seed=seed):
            yield item.prompt
            yield item.target


def _version_texts(root: Path, version_ids: list[str]) -> Iterator[str]:
    import pyarrow.parquet as pq

    from corpus.catalog import Catalog

    catalog = Catalog(root)
    for vid in version_ids:
        shards = catalog.shards(vid)
        if not shards:
            raise UserError(f"unknown version {vid} (see: python -m corpus.sql \"SELECT id, source FROM versions\")")
        for shard in shards:
            table = pq.read_table(root / shard["path"], columns=["prompt", "target"])
            for col in ("prompt", "target"):
                yield from (s for s in table.column(col).to_pylist() if s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m corpus.tokenizer", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a byte-level BPE tokenizer.json")
    t.add_argument("--from", dest="inputs", nargs="*", default=[], help="text files (txt, json, jsonl(.gz), parquet), globs or dirs")
    t.add_argument("--field", action="append", help="only these JSON/Parquet string fields (default: all)")
    t.add_argument("--version", action="append", default=[], help="registered version ids to read text from")
    t.add_argument("--synthetic", type=int, default=0, metavar="N", help="add N generated synthetic examples")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--vocab-size", type=int, required=True)
    t.add_argument("--min-frequency", type=int, default=2)
    t.add_argument("--data-dir", default=None)
    t.add_argument("--out", required=True, type=Path)
    i = sub.add_parser("info", help="print sha256, vocab size and special ids of a tokenizer.json")
    i.add_argument("path", type=Path)
    args = parser.parse_args(argv)

    from corpus.cli import run_cli

    return run_cli(lambda: _run(args))


def _run(args) -> int:
    from corpus.paths import data_root

    if args.command == "info":
        info = load_tokenizer(args.path)
        print(json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in info.__dict__.items()}, indent=2))
        return 0
    from corpus.flags import MAX_COUNT, check_range

    check_range("--vocab-size", args.vocab_size, 8, 1 << 24)  # the special tokens and a few bytes at least
    check_range("--min-frequency", args.min_frequency, 0, None)
    check_range("--synthetic", args.synthetic, 0, MAX_COUNT)
    check_range("--seed", args.seed, 0, (1 << 63) - 1)
    if not (args.inputs or args.version or args.synthetic):
        raise UserError("nothing to train on: give --from PATH, --version ID or --synthetic N")
    paths = _expand(args.inputs)

    def texts() -> Iterator[str]:
        for p in paths:
            yield from _texts_from_file(p, args.field)
        if args.version:
            yield from _version_texts(data_root(args.data_dir), args.version)
        if args.synthetic:
            yield from _synthetic_texts(args.synthetic, args.seed)

    tok = train_tokenizer(texts(), args.vocab_size, args.min_frequency)
    with atomic_path(args.out) as tmp:
        tok.save(str(tmp))
    info = load_tokenizer(args.out)
    print(f"wrote {args.out}  vocab={info.vocab_size}  sha256={info.sha256}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
