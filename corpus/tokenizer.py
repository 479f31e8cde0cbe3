"""Byte-level BPE tokenizers: train one, identify it by sha256, install it into the data root.

    python -m corpus.tokenizer train --from wiki.txt --vocab-size 8192 --out tokenizer.json
    python -m corpus.tokenizer train --synthetic 20000 --vocab-size 2048 --out tokenizer.json

A build never trusts a path: it hashes the file, copies it to ``data/tokenizers/<sha256>.json``
and records the sha with the version, so a version always knows exactly how it was tokenized.

Pretrained tokenizers work too: ``--tokenizer`` takes a ``tokenizer.json``, a local Hugging Face
tokenizer directory (its ``special_tokens_map.json`` / ``tokenizer_config.json`` name the specials)
or, online, a hub id (``gpt2``). The project needs a pad, a bos and an eos token; a tokenizer that
names them otherwise gets a mapping (``--special-tokens pad=<|endoftext|>,bos=<|endoftext|>,...``).
A Hugging Face tokenizer that declares an eos but no pad token (GPT-2, GPT-NeoX: the Mamba2
checkpoints') pads with its eos, as transformers users do (``pad_token = eos_token``); padding is
never a target here, lengths mark it. A mapping other than the default names is part of the
tokenizer's identity: it is stored beside the copy as ``<sha>.specials.json`` and the sha covers
file and mapping together.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
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
ROLES = ("pad", "bos", "eos")
DEFAULT_SPECIALS = dict(zip(ROLES, SPECIAL_TOKENS))
SPECIALS_SUFFIX = ".specials.json"


@dataclass(frozen=True)
class TokenizerInfo:
    """A tokenizer file with the facts every version records about it."""

    path: Path
    sha256: str  # identity: the file's sha256, or file + mapping when the specials are mapped
    vocab_size: int
    pad_id: int
    bos_id: int
    eos_id: int
    specials: tuple[tuple[str, str], ...] = tuple(DEFAULT_SPECIALS.items())  # (role, token) pairs

    @property
    def mapped(self) -> bool:
        """True when the specials are not the project's own ``<pad>/<bos>/<eos>``."""
        return dict(self.specials) != DEFAULT_SPECIALS

    def files(self, name: str = "tokenizer.json") -> dict[str, Path | bytes]:
        """What keeps this tokenizer under ``name``: the JSON file and, when the specials are mapped,
        the ``.specials.json`` sidecar's bytes (a run's best-model/ carries both)."""
        out: dict[str, Path | bytes] = {name: self.path}
        if self.mapped:
            out[specials_path(Path(name)).name] = (json.dumps(dict(self.specials), indent=2) + "\n").encode()
        return out

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


def specials_path(path: Path) -> Path:
    """``tokenizer.json`` → ``tokenizer.specials.json`` (the sidecar holding a special-token mapping)."""
    return path.with_name(path.name.removesuffix(".json") + SPECIALS_SUFFIX)


def parse_specials(text: str | None) -> dict[str, str]:
    """``pad=<|endoftext|>,eos=<|endoftext|>`` → ``{"pad": ..., "eos": ...}`` (roles checked)."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        role, sep, token = part.partition("=")
        role = role.strip().lower()
        if not sep or role not in ROLES or not token:
            raise UserError(f"--special-tokens: {part!r} is not ROLE=TOKEN with ROLE one of {', '.join(ROLES)}")
        out[role] = token
    return out


def resolve_tokenizer_file(spec: str | Path, revision: str | None = None) -> tuple[Path, dict[str, str]]:
    """A ``tokenizer.json``, a Hugging Face tokenizer directory or a hub id → the JSON file and
    the special-token names the source itself declares (empty when it declares none)."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path, _read_specials_sidecar(path)
    if path.is_dir():
        if not (path / "tokenizer.json").is_file():
            raise UserError(f"tokenizer directory {path} has no tokenizer.json (a fast, tokenizers-format "
                            "tokenizer is needed; save one with AutoTokenizer.from_pretrained(...).save_pretrained)")
        return path / "tokenizer.json", _hf_declared_specials(path)
    if path.suffix == ".json" or path.is_absolute() or str(spec).startswith((".", "~")) or str(spec).count("/") > 1:
        raise UserError(f"tokenizer not found: {path}")
    return _from_hub(str(spec), revision)


def _from_hub(repo_id: str, revision: str | None) -> tuple[Path, dict[str, str]]:
    from huggingface_hub import hf_hub_download

    try:
        file = Path(hf_hub_download(repo_id, "tokenizer.json", revision=revision))
    except Exception as exc:  # noqa: BLE001 - offline, unknown repo, no tokenizer.json: all one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0][:160]
        raise UserError(f"tokenizer {repo_id!r} is neither a file, a directory nor a reachable hub id "
                        f"({type(exc).__name__}: {first}); offline, pass a local tokenizer.json or directory") from None
    declared = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        try:
            extra = Path(hf_hub_download(repo_id, name, revision=revision))
        except Exception:  # noqa: BLE001 - optional files
            continue
        declared = {**_specials_from_json(extra), **declared}
    return file, _pad_with_eos(declared)


def _hf_declared_specials(directory: Path) -> dict[str, str]:
    """bos/eos/pad names from a Hugging Face tokenizer directory (special_tokens_map.json first)."""
    declared: dict[str, str] = {}
    for name in ("special_tokens_map.json", "tokenizer_config.json"):
        if (directory / name).is_file():
            declared = {**_specials_from_json(directory / name), **declared}
    return _pad_with_eos(declared)


def _pad_with_eos(declared: dict[str, str]) -> dict[str, str]:
    """A declared eos without a declared pad: pad with the eos (transformers' usual fix)."""
    if "pad" not in declared and "eos" in declared:
        return {**declared, "pad": declared["eos"]}
    return declared


def _specials_from_json(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable ({exc})") from None
    out = {}
    for role in ROLES:
        value = data.get(f"{role}_token") if isinstance(data, dict) else None
        if isinstance(value, dict):  # {"content": "<|endoftext|>", "lstrip": false, ...}
            value = value.get("content")
        if isinstance(value, str) and value:
            out[role] = value
    return out


def _read_specials_sidecar(path: Path) -> dict[str, str]:
    side = specials_path(path)
    if not side.is_file():
        return {}
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
        return {role: str(data[role]) for role in ROLES}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{side}: unreadable special-token mapping ({type(exc).__name__}: {exc}); "
                        "it must map pad, bos and eos to tokens") from None


def tokenizer_identity(path: Path, specials: dict[str, str]) -> str:
    """The sha a version records: the file's sha256, extended by the mapping when one is used."""
    file_sha = sha256_file(path)
    if specials == DEFAULT_SPECIALS:
        return file_sha
    import hashlib

    mapping = json.dumps({role: specials[role] for role in ROLES}, sort_keys=True)
    return hashlib.sha256(f"{file_sha}\nspecials {mapping}".encode()).hexdigest()


def load_tokenizer(path: str | Path, specials: dict[str, str] | None = None,
                   revision: str | None = None) -> TokenizerInfo:
    """Open and check a tokenizer (file, HF directory or hub id); a bad one is one clear error.

    Special tokens: ``specials`` (from ``--special-tokens``) win over what the tokenizer declares
    (an installed copy's sidecar, an HF directory's special_tokens_map.json), which wins over the
    project's default names ``<pad>/<bos>/<eos>``."""
    from tokenizers import Tokenizer

    file, declared = resolve_tokenizer_file(path, revision)
    try:
        tok = Tokenizer.from_file(str(file))
    except Exception as exc:  # tokenizers raises plain Exception subclasses
        raise UserError(f"unreadable tokenizer {file}: {str(exc).splitlines()[0]}") from None
    names = {**DEFAULT_SPECIALS, **declared, **(specials or {})}
    ids = {role: tok.token_to_id(token) for role, token in names.items()}
    missing = [role for role, i in ids.items() if i is None]
    if missing:
        have = sorted(t.content for t in tok.get_added_tokens_decoder().values())[:8]
        hint = ",".join(f"{role}=TOKEN" for role in missing)
        raise UserError(f"tokenizer {file} has no {'/'.join(missing)} token "
                        f"({', '.join(f'{r}={names[r]!r}' for r in missing)} not in its vocabulary): "
                        f"map them with --special-tokens {hint}"
                        + (f" (its special tokens: {', '.join(have)})" if have else ""))
    try:  # a WordLevel/WordPiece model without its unknown token fails on the first unseen word
        tok.encode("zq\u2603\U0001f600 0xff", add_special_tokens=False)
    except Exception as exc:
        raise UserError(f"tokenizer {file} cannot encode text it has not seen: {str(exc).splitlines()[0]} "
                        f"(a WordLevel or WordPiece model needs an unk token)") from None
    identity = tokenizer_identity(file, names)
    if specials is None and INSTALLED_NAME.match(file.name) and file.parent.name == "tokenizers" \
            and file.stem != identity:
        raise damaged_copy(file, identity, file.stem)  # a data root's copy replaced by another tokenizer
    return TokenizerInfo(
        path=file,
        sha256=identity,
        vocab_size=tok.get_vocab_size(with_added_tokens=True),
        pad_id=ids["pad"],
        bos_id=ids["bos"],
        eos_id=ids["eos"],
        specials=tuple((role, names[role]) for role in ROLES),
    )


INSTALLED_NAME = __import__("re").compile(r"^[0-9a-f]{64}\.json$")  # data/tokenizers/<sha256>.json


def damaged_copy(path: Path, actual: str, named: str) -> UserError:
    """The one line for a data root's tokenizer copy whose bytes are no longer the tokenizer its
    name (and the catalog) say: the file is named, never the manifest that points at it."""
    return UserError(f"{path}: damaged (its sha256 {actual[:12]}… is not the {named[:12]}… it is named by; the "
                     f"shards of that tokenizer would be read with another one): copy the original tokenizer.json "
                     f"back there (python -m corpus.verify lists it); nothing was built or planned")


def install_tokenizer(info: TokenizerInfo, root: Path, catalog=None) -> TokenizerInfo:
    """Copy the tokenizer to ``<root>/tokenizers/<sha>.json`` (plus its specials sidecar when the
    specials are mapped) and register it (idempotent)."""
    from corpus.paths import tokenizer_dir

    dest = tokenizer_dir(root) / f"{info.sha256}.json"
    copies = []
    for name, content in info.files(dest.name).items():  # the sidecar first: the JSON marks it complete
        target = dest.with_name(name)
        copies.append(target)
        if target.exists():  # never publish on top of a copy that is no longer this tokenizer
            want = hashlib.sha256(content).hexdigest() if isinstance(content, bytes) else sha256_file(content)
            if sha256_file(target) != want:
                raise damaged_copy(target, sha256_file(target), info.sha256)
        else:
            with atomic_path(target) as tmp:
                if isinstance(content, bytes):
                    tmp.write_bytes(content)
                else:
                    shutil.copyfile(content, tmp)
    installed = TokenizerInfo(dest, info.sha256, info.vocab_size, info.pad_id, info.bos_id, info.eos_id,
                              info.specials)
    if catalog is not None:
        rel = str(dest.relative_to(root))
        with catalog.connect() as con:
            con.execute(
                "INSERT INTO tokenizers VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [info.sha256, rel, info.vocab_size, info.pad_id, info.bos_id, info.eos_id, datetime.now(timezone.utc)],
            )
            for path in copies:  # hashed as they are on disk, so corpus.verify covers both
                con.execute(
                    "INSERT INTO files VALUES (?, NULL, 'tokenizer', ?, ?) ON CONFLICT DO NOTHING",
                    [str(path.relative_to(root)), sha256_file(path), path.stat().st_size],
                )
    return installed


def tokenizer_for_sha(root: Path, sha: str) -> TokenizerInfo:
    """The data root's copy of tokenizer ``sha``, refused when its bytes no longer hash to it
    (an edit that stays valid JSON would otherwise tokenize differently from the shards)."""
    from corpus.paths import tokenizer_dir

    info = load_tokenizer(tokenizer_dir(root) / f"{sha}.json")
    if info.sha256 != sha:
        raise damaged_copy(info.path, info.sha256, sha)
    return info


# -- training ---------------------------------------------------------------------------------

def texts_from_file(path: Path, fields: list[str] | None = None) -> Iterator[str]:
    """The strings of a text file (.txt lines, JSON/JSONL and Parquet string fields) to train on."""
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


def expand_inputs(patterns: list[str]) -> list[Path]:
    """Files, directories (recursively) and globs → files; a pattern that matches nothing is an error."""
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


def synthetic_texts(count: int, seed: int = 0) -> Iterator[str]:
    """Prompts and targets of ``count`` generated items over every worked-solution synthetic task
    and tier (``REASONING_TASKS``: a fixed list, so a new task does not change every tokenizer)."""
    from corpus.synthetic import REASONING_TASKS, generate

    for task in sorted(REASONING_TASKS):
        for item in generate(task, count // max(1, len(REASONING_TASKS)), tiers=[0, 1, 2, 3], seed=seed):
            yield item.prompt
            yield item.target


def version_texts(root: Path, version_ids: list[str]) -> Iterator[str]:
    """The prompt and target texts of registered versions (to train a tokenizer on a built corpus)."""
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
    i = sub.add_parser("info", help="print sha256, vocab size and special ids of a tokenizer")
    i.add_argument("path", help="tokenizer.json, a Hugging Face tokenizer directory or a hub id")
    i.add_argument("--special-tokens", metavar="ROLE=TOKEN,...", help="pad/bos/eos mapping (see corpus.build --help)")
    args = parser.parse_args(argv)

    from corpus.cli import run_cli

    return run_cli(lambda: _run(args))


def _run(args) -> int:
    if args.command == "info":
        info = load_tokenizer(args.path, parse_specials(args.special_tokens))
        fields = {k: v for k, v in info.__dict__.items() if k != "tokenizer"}
        fields["path"], fields["specials"] = str(info.path), dict(info.specials)
        print(json.dumps(fields, indent=2))
        return 0
    from corpus.flags import MAX_COUNT, check_range
    from corpus.paths import data_root

    check_range("--vocab-size", args.vocab_size, 8, 1 << 24)  # the special tokens and a few bytes at least
    check_range("--min-frequency", args.min_frequency, 0, None)
    check_range("--synthetic", args.synthetic, 0, MAX_COUNT)
    check_range("--seed", args.seed, 0, (1 << 63) - 1)

    info = train_tokenizer_file(args.out, args.inputs or None, synthetic=args.synthetic, vocab_size=args.vocab_size,
                                min_frequency=args.min_frequency, seed=args.seed, fields=args.field,
                                versions=args.version, data_dir=data_root(args.data_dir))
    print(f"wrote {args.out}  vocab={info.vocab_size}  sha256={info.sha256}")
    note = vocab_shortfall(args.vocab_size, info.vocab_size, args.min_frequency)
    if note:
        print(note)
    return 0


def train_tokenizer_file(out, inputs=None, *, synthetic: int = 0, vocab_size: int = 8192, min_frequency: int = 2,
                         seed: int = 0, fields=None, versions=None, data_dir=None):
    """Train on files (globs, directories; only ``fields`` of records), registered ``versions``'
    texts (of the data root ``data_dir``) and/or ``synthetic`` examples, and save the tokenizer
    atomically at ``out``: what ``python -m corpus.tokenizer train`` and ``corpus.train_tokenizer`` run."""
    from itertools import chain

    from corpus.atomic import atomic_path
    from corpus.errors import UserError

    if inputs is None and not synthetic and not versions:
        raise UserError("nothing to train on: give --from PATH, --version ID or --synthetic N")
    patterns = [] if inputs is None else list(map(str, [inputs] if isinstance(inputs, (str, Path)) else inputs))
    paths = expand_inputs(patterns)
    texts = chain((t for p in paths for t in texts_from_file(p, list(fields) if fields else None)),
                  version_texts(Path(data_dir), list(versions)) if versions else (),
                  synthetic_texts(synthetic, seed) if synthetic else ())
    tok = train_tokenizer(texts, vocab_size, min_frequency)
    with atomic_path(Path(out)) as tmp:
        tok.save(str(tmp))
    return load_tokenizer(out)


def vocab_shortfall(asked: int, got: int, min_frequency: int) -> str | None:
    """A note when BPE ran out of merges before the requested size (the text is too small)."""
    if got >= asked:
        return None
    return (f"note: asked for a vocabulary of {asked:,}, got {got:,}: the text has no more pairs seen "
            f"{min_frequency}+ times; train on more text or lower --min-frequency to reach it")


if __name__ == "__main__":
    sys.exit(main())
