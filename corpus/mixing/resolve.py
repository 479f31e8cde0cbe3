"""Manifest → concrete inputs: the tokenizer file and one published version per source.

"latest" means the newest published version of the source built with the manifest's tokenizer
and a ``max_seq_len`` no larger than the manifest's. What is missing is made when the manifest
says how: ``[data.tokenizer_train]`` trains the tokenizer, a source's ``build = {...}`` runs
``corpus.build`` in-process. So a fresh machine goes from nothing to a plan with one command.

The plan id is a hash of what decides the plan's content (tokenizer sha, versions, weights,
tiers, sizes, seed, window, algorithm), not of ``[model]``/``[train]``/``[eval]``: changing the
learning rate does not re-plan, changing a weight does.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

from corpus.errors import UserError
from corpus.mixing.manifest import Manifest, SourceSpec

PLAN_ALGORITHM = "stratified-window@1"
RESERVED_BUILD_KEYS = {"tokenizer", "max_seq_len", "max-seq-len", "data_dir", "data-dir", "source"}


@dataclass(frozen=True)
class Component:
    """One source of the mix with the version it resolved to (its catalog row)."""

    index: int
    spec: SourceSpec
    version: dict[str, Any]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def version_id(self) -> str:
        return self.version["id"]

    @property
    def weight(self) -> float:
        return self.spec.weight

    def key(self, field: str = "") -> str:
        return f"data.sources[{self.index}] ({self.name})" + (f".{field}" if field else "")


@dataclass
class ResolvedMix:
    manifest: Manifest
    root: Path
    tokenizer: Any  # corpus.tokenizer.TokenizerInfo
    components: list[Component]

    def payload(self) -> dict[str, Any]:
        """Everything that decides the plan's bytes, canonically ordered."""
        d = self.manifest.data
        return {
            "algorithm": PLAN_ALGORITHM,
            "tokenizer": self.tokenizer.sha256,
            "max_seq_len": d.max_seq_len,
            "train_samples": d.train_samples,
            "val_samples": d.val_samples,
            "seed": d.seed,
            "window": d.window,
            "sources": [
                {"name": c.name, "version": c.version_id, "weight": c.weight, "tiers": tiers_json(c.spec),
                 **({"tier_rule": c.spec.tier_rule} if c.spec.tier_rule else {})}
                for c in self.components
            ],
        }

    @cached_property
    def plan_id(self) -> str:
        text = json.dumps(self.payload(), sort_keys=True, separators=(",", ":"))
        return "p" + hashlib.sha256(text.encode()).hexdigest()[:16]


def tiers_json(spec: SourceSpec) -> list | None:
    if not spec.tiers:
        return None
    return [[k.at, {str(t): w for t, w in sorted(k.weights.items())}] for k in spec.tiers]


# -- tokenizer ---------------------------------------------------------------------------------

def tokenizer_path(manifest: Manifest, root: Path) -> Path:
    """``data.tokenizer``: absolute, or relative to the data root (``tokenizers/demo.json``)."""
    path = Path(manifest.data.tokenizer).expanduser()
    return path if path.is_absolute() else root / path


def ensure_tokenizer(manifest: Manifest, root: Path, log: Callable[[str], None] = print):
    """Load the manifest's tokenizer, training it first from ``[data.tokenizer_train]`` if absent."""
    from corpus.tokenizer import load_tokenizer

    path = tokenizer_path(manifest, root)
    if not path.exists():
        spec = manifest.data.tokenizer_train
        if spec is None:
            raise UserError(f"{manifest.where('data.tokenizer')}: {path} does not exist (train one with "
                            f"python -m corpus.tokenizer train ... --out {path}, or add [data.tokenizer_train])")
        log(f"training tokenizer {path} (vocab {spec.vocab_size}) from "
            + ", ".join(filter(None, [f"{spec.synthetic} synthetic examples" if spec.synthetic else "",
                                      ", ".join(spec.inputs)])))
        _train_tokenizer(manifest, path)
    try:
        return load_tokenizer(path)
    except UserError as exc:
        raise UserError(f"{manifest.where('data.tokenizer')}: {exc}") from None


def _train_tokenizer(manifest: Manifest, path: Path) -> None:
    from corpus.atomic import atomic_path
    from corpus.tokenizer import expand_inputs, synthetic_texts, texts_from_file, train_tokenizer

    spec = manifest.data.tokenizer_train
    try:
        files = expand_inputs(spec.inputs)
    except UserError as exc:
        raise UserError(f"{manifest.where('data.tokenizer_train.from')}: {exc}") from None

    def texts():
        for f in files:
            yield from texts_from_file(f, None)
        if spec.synthetic:
            yield from synthetic_texts(spec.synthetic, spec.seed)

    tok = train_tokenizer(texts(), spec.vocab_size, spec.min_frequency)
    with atomic_path(path) as tmp:
        tok.save(str(tmp))


# -- versions ----------------------------------------------------------------------------------

def resolve(manifest: Manifest, root: Path, build_missing: bool = True,
            log: Callable[[str], None] = print) -> ResolvedMix:
    """The tokenizer and a published version for every source; builds what is missing if allowed."""
    from corpus.catalog import Catalog
    from corpus.sources import source_names

    catalog = Catalog(root)
    known = set(source_names()) | _named_sources(catalog)
    for i, spec in enumerate(manifest.data.sources):
        if spec.name not in known:
            raise UserError(f"{manifest.where(f'data.sources[{i}].name')}: unknown source {spec.name!r}; "
                            f"known: {', '.join(sorted(known))}")
    tok = ensure_tokenizer(manifest, root, log) if build_missing else _load_existing_tokenizer(manifest, root)
    explicit = [s.version for s in manifest.data.sources if s.version != "latest"]
    versions = _versions(catalog, [s.name for s in manifest.data.sources], explicit)
    components = []
    for i, spec in enumerate(manifest.data.sources):
        row = _resolve_version(manifest, root, catalog, versions, i, spec, tok, build_missing, log)
        if spec.tier_rule and spec.tier_rule != row["tier_rule"]:
            _check_tier_rule(manifest, catalog, i, spec, row)
        components.append(Component(i, spec, row))
    return ResolvedMix(manifest, root, tok, components)


def _named_sources(catalog) -> set[str]:
    """Sources registered under a user's name (``corpus.build jsonl --name squad``)."""
    if not catalog.path.exists():
        return set()
    with catalog.connect(read_only=True) as con:
        return {r[0] for r in con.execute("SELECT DISTINCT source FROM versions").fetchall()}


def _check_tier_rule(manifest: Manifest, catalog, i: int, spec: SourceSpec, row: dict) -> None:
    """A re-tiered rule must have side files for this version (``python -m corpus.retier``)."""
    from corpus.tiers import version_rules

    rules = version_rules(catalog, row["id"])
    if spec.tier_rule not in rules:
        raise UserError(f"{manifest.where(f'data.sources[{i}] ({spec.name}).tier_rule')}: version {row['id']} has "
                        f"no tiers under {spec.tier_rule} (has: {', '.join(rules)}); run python -m corpus.retier "
                        f"{row['id']} --rule {spec.tier_rule}")


def _versions(catalog, sources: list[str], ids: list[str]) -> list[dict]:
    """Catalog rows of every version of ``sources`` plus the versions named by id (one connection)."""
    if not catalog.path.exists():
        return []
    with catalog.connect(read_only=True) as con:
        marks = lambda xs: ", ".join("?" * len(xs)) or "NULL"  # noqa: E731
        cur = con.execute(f"SELECT * FROM versions WHERE source IN ({marks(sources)}) OR id IN ({marks(ids)})",
                          sources + ids)
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r)) for r in cur.fetchall()]


def _load_existing_tokenizer(manifest: Manifest, root: Path):
    from corpus.tokenizer import load_tokenizer

    try:
        return load_tokenizer(tokenizer_path(manifest, root))
    except UserError as exc:
        raise UserError(f"{manifest.where('data.tokenizer')}: {exc}") from None


def _resolve_version(manifest, root, catalog, versions, i, spec: SourceSpec, tok, build_missing, log) -> dict:
    key = f"data.sources[{i}] ({spec.name}).version"
    if spec.version != "latest":
        row = next((r for r in versions if r["id"] == spec.version), None)
        if row is None:
            raise UserError(f"{manifest.where(key)}: unknown version {spec.version!r} "
                            f"(see python -m corpus.sql \"SELECT id, source, status FROM versions\")")
        if row["source"] != spec.name:
            raise UserError(f"{manifest.where(key)}: version {spec.version} is of source {row['source']!r}, "
                            f"not {spec.name!r}")
        _check_usable(manifest, key, row, tok, catalog)
        return row
    max_len = manifest.data.max_seq_len
    row = latest_version(versions, spec.name, tok.sha256, max_len)
    if row is None and spec.build is not None and build_missing:
        _build(manifest, root, i, spec, tok, log)
        row = latest_version(_versions(catalog, [spec.name], []), spec.name, tok.sha256, max_len)
    if row is None:
        raise UserError(f"{manifest.where(key)}: {_why_no_latest(versions, spec.name, tok.sha256, max_len)}")
    _check_usable(manifest, key, row, tok, catalog)
    return row


def latest_version(versions: list[dict], source: str, tokenizer_sha: str, max_seq_len: int) -> dict | None:
    """The newest published training version of ``source`` built with this tokenizer and length."""
    usable = [r for r in versions if r["source"] == source and r["status"] == "published"
              and r["tokenizer_sha"] == tokenizer_sha and r["max_seq_len"] <= max_seq_len
              and (r.get("kind") or "train") != "eval"]
    usable.sort(key=lambda r: r["id"])
    usable.sort(key=lambda r: r["created_at"], reverse=True)
    return usable[0] if usable else None


def _why_no_latest(versions: list[dict], source: str, tokenizer_sha: str, max_seq_len: int) -> str:
    rows = sorted((r for r in versions if r["source"] == source), key=lambda r: r["created_at"], reverse=True)
    hint = f"build one (python -m corpus.build {source} --tokenizer ... --max-seq-len {max_seq_len}) or add build = {{...}}"
    if not rows:
        return f"no version of {source} exists: {hint}"
    published = [r for r in rows if r["status"] == "published"]
    if not published:
        return f"no published version of {source} ({rows[0]['id']} is {rows[0]['status']}): {hint}"
    other_tok = [r for r in published if r["tokenizer_sha"] != tokenizer_sha]
    if len(other_tok) == len(published):
        return (f"every published version of {source} was built with another tokenizer "
                f"({other_tok[0]['tokenizer_sha'][:12]}…, manifest tokenizer {tokenizer_sha[:12]}…): {hint}")
    longer = [r for r in published if r["max_seq_len"] > max_seq_len]
    if longer:
        return (f"published versions of {source} have max_seq_len {longer[0]['max_seq_len']} > "
                f"data.max_seq_len {max_seq_len}: {hint}")
    return f"no published training version of {source} (only evaluation versions): {hint}"


def _check_usable(manifest, key: str, row: dict, tok, catalog) -> None:
    if row["status"] != "published":
        from corpus.publish import failing_expectations

        failing = failing_expectations(catalog, row["id"], limit=1)
        why = f": {failing[0]}" if failing else ""
        raise UserError(f"{manifest.where(key)}: version {row['id']} is {row['status']}, not published{why} "
                        f"(see python -m corpus.quality report)")
    if row["tokenizer_sha"] != tok.sha256:
        raise UserError(f"{manifest.where(key)}: version {row['id']} was built with tokenizer "
                        f"{row['tokenizer_sha'][:12]}…, but data.tokenizer is {tok.sha256[:12]}… "
                        f"(every source of a mix must share one tokenizer)")
    if row["max_seq_len"] > manifest.data.max_seq_len:
        raise UserError(f"{manifest.where(key)}: version {row['id']} allows {row['max_seq_len']} tokens per row "
                        f"> data.max_seq_len {manifest.data.max_seq_len}")
    if (row.get("kind") or "train") == "eval":
        raise UserError(f"{manifest.where(key)}: version {row['id']} is an evaluation split; "
                        f"it cannot be mixed into training")


def build_argv(manifest: Manifest, root: Path, i: int, spec: SourceSpec, tok) -> list[str]:
    """``corpus.build`` arguments from a source's ``build`` table (keys become ``--flags``)."""
    from corpus.api import flags

    return [spec.name, *flags(build_options(manifest, root, i, spec, tok)), "--quiet"]


def build_options(manifest: Manifest, root: Path, i: int, spec: SourceSpec, tok) -> dict:
    """``corpus.api.build_source`` keyword options: the source's ``build`` table plus what [data] decides."""
    for name in spec.build or {}:
        if name in RESERVED_BUILD_KEYS:
            raise UserError(f"{manifest.where(f'data.sources[{i}] ({spec.name}).build.{name}')}: "
                            f"set by the manifest's [data] section, not here")
    return {"tokenizer": str(tok.path), "max_seq_len": manifest.data.max_seq_len, "data_dir": str(root),
            **{name.replace("-", "_"): value for name, value in (spec.build or {}).items()}}


def _build(manifest: Manifest, root: Path, i: int, spec: SourceSpec, tok, log) -> None:
    from corpus import api

    where = manifest.where(f"data.sources[{i}] ({spec.name}).build")
    log(f"building {spec.name}: python -m corpus.build {' '.join(build_argv(manifest, root, i, spec, tok))}")
    options = build_options(manifest, root, i, spec, tok)
    try:
        built = api.build_source(spec.name, data_dir=options.pop("data_dir"), **options)
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    if built.status != "published":
        raise UserError(f"{where}: the built version failed validation (see python -m corpus.quality report)")
