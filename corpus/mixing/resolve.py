"""Manifest → concrete inputs: the tokenizer file and one published version per source.

A source resolves to exactly the data its declaration names, and the plan records how:

    pinned    ``version = "v…"``: that version, as it is (its overlong rows counted, corpus.mixing.overlong)
    declared  a ``build = {...}`` table (or ``--from SOURCE=PATH``): the version that build would make, its id
              computed by the build's own code (corpus.build.identify_version: inputs' fingerprint, options,
              tokenizer, code); built in-process when missing, never another version of the same name
    latest    neither: the newest published training version *compatible with the plan*: the manifest's
              tokenizer and, for document windows, windows cut at the plan's ``max_seq_len``

A version cut for another window length is not "latest" for the plan: the one-line error names it
and the build command that makes the right one. ``[data.tokenizer_train]`` trains a missing
tokenizer, so a fresh machine goes from nothing to a plan with one command.

The plan id is a hash of what decides the plan's content (tokenizer sha, versions, weights,
tiers, overlong policies, max_seq_len, sizes, seed, window, algorithm), not of ``[model]``/``[train]``/``[eval]``: changing the
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
from corpus.mixing.overlong import policy_for

PLAN_ALGORITHM = "stratified-window@1"
CHOSEN = {"pinned": "pinned in the manifest", "declared": "built from the declaration",
          "latest": "latest compatible"}
RESERVED_BUILD_KEYS = {"tokenizer", "max_seq_len", "max-seq-len", "data_dir", "data-dir", "source"}


@dataclass(frozen=True)
class Component:
    """One source of the mix with the version it resolved to (its catalog row)."""

    index: int
    spec: SourceSpec
    version: dict[str, Any]
    overlong: str = "skip"  # the policy for rows longer than data.max_seq_len (corpus.mixing.overlong)
    chosen: str = "latest"  # how the version was chosen: pinned | declared | latest (CHOSEN)

    @property
    def fingerprint(self) -> str:
        """The version's inputs' fingerprint (sha256 over input names and contents, or the hub pin)."""
        return self.version.get("input_fingerprint") or ""

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
            # only when tokens: plans weighted by samples keep the ids they had before weight_by existed
            **({"weight_by": d.weight_by} if d.weight_by != "samples" else {}),
            "sources": [
                {"name": c.name, "version": c.version_id, "weight": c.weight, "tiers": tiers_json(c.spec),
                 "overlong": c.overlong,
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
        row, chosen = _resolve_version(manifest, root, catalog, versions, i, spec, tok, build_missing, log)
        if spec.tier_rule and spec.tier_rule != row["tier_rule"]:
            _check_tier_rule(manifest, catalog, i, spec, row)
        components.append(Component(i, spec, row, policy_for(spec.overlong, manifest.data.overlong, row), chosen))
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


def _resolve_version(manifest, root, catalog, versions, i, spec: SourceSpec, tok, build_missing,
                     log) -> tuple[dict, str]:
    """The source's version and how it was chosen (a key of CHOSEN)."""
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
        return row, "pinned"
    if spec.build is not None:
        return _declared_version(manifest, root, catalog, i, spec, tok, build_missing, log), "declared"
    row = latest_version(versions, spec.name, tok.sha256, manifest.data.max_seq_len)
    if row is None:
        raise UserError(f"{manifest.where(key)}: "
                        f"{_why_no_latest(manifest, root, versions, spec.name, tok, manifest.data.max_seq_len)}")
    _check_usable(manifest, key, row, tok, catalog)
    return row, "latest"


def declared_version_id(manifest: Manifest, root: Path, i: int, spec: SourceSpec, tok) -> str:
    """The id the source's ``build`` table makes, computed by the build itself (nothing built)."""
    from corpus.build import identify_version

    where = manifest.where(f"data.sources[{i}] ({spec.name}).build")
    try:
        return identify_version(build_request(manifest, root, i, spec, tok)).version_id
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None


def _declared_version(manifest, root, catalog, i, spec: SourceSpec, tok, build_missing, log) -> dict:
    key = f"data.sources[{i}] ({spec.name}).build"
    vid = declared_version_id(manifest, root, i, spec, tok)
    row = catalog.version(vid) if catalog.path.exists() else None
    if row is None:
        if not build_missing:
            raise UserError(f"{manifest.where(key)}: the declared version {vid} is not built (run python -m "
                            f"corpus.build {' '.join(build_argv(manifest, root, i, spec, tok))}, or plan without "
                            f"--no-build)")
        built = _build(manifest, root, i, spec, tok, log)
        if built != vid:  # the build and this resolution disagree on what the declaration means
            raise UserError(f"{manifest.where(key)}: the build made {built}, not the declared {vid} "
                            f"(its inputs changed meanwhile?); plan again")
        row = catalog.version(vid)
    _check_usable(manifest, key, row, tok, catalog)
    return row


def latest_version(versions: list[dict], source: str, tokenizer_sha: str,
                   max_seq_len: int | None = None) -> dict | None:
    """The newest published training version of ``source`` built with this tokenizer and, given
    ``max_seq_len``, not cut into windows of another length."""
    usable = [r for r in versions if r["source"] == source and r["status"] == "published"
              and r["tokenizer_sha"] == tokenizer_sha and (r.get("kind") or "train") != "eval"
              and (max_seq_len is None or window_length(r) in (None, max_seq_len))]
    usable.sort(key=lambda r: r["id"])
    usable.sort(key=lambda r: r["created_at"], reverse=True)
    return usable[0] if usable else None


def window_length(version: dict) -> int | None:
    """The token length a document version's windows were cut at; None for whole examples."""
    from corpus.mixing.overlong import version_layout

    if version_layout(version) != "windows":
        return None
    config = version.get("config")
    config = json.loads(config) if isinstance(config, str) else (config or {})
    return config.get("max_seq_len") or version.get("max_seq_len")


def _why_no_latest(manifest: Manifest, root: Path, versions: list[dict], source: str, tok,
                   max_seq_len: int) -> str:
    tokenizer_sha = tok.sha256
    rows = sorted((r for r in versions if r["source"] == source), key=lambda r: r["created_at"], reverse=True)
    hint = f"build one (python -m corpus.build {source} --tokenizer ...) or add build = {{...}}"
    if not rows:
        return f"no version of {source} exists: {hint}"
    published = [r for r in rows if r["status"] == "published"]
    if not published:
        return f"no published version of {source} ({rows[0]['id']} is {rows[0]['status']}): {hint}"
    other_tok = [r for r in published if r["tokenizer_sha"] != tokenizer_sha]
    if len(other_tok) == len(published):
        return (f"every published version of {source} was built with another tokenizer "
                f"({other_tok[0]['tokenizer_sha'][:12]}…, manifest tokenizer {tokenizer_sha[:12]}…): {hint}")
    train = [r for r in published if r["tokenizer_sha"] == tokenizer_sha and (r.get("kind") or "train") != "eval"]
    if not train:
        return f"no published training version of {source} (only evaluation versions): {hint}"
    other = train[0]
    config = json.loads(other["config"]) if isinstance(other["config"], str) else (other["config"] or {})
    from corpus.request import as_flags

    options = as_flags({k: v for k, v in (config.get("options") or {}).items() if k != "name"})
    command = " ".join(["python -m corpus.build", source, "--from <its inputs>", "--max-seq-len", str(max_seq_len),
                        *options, "--tokenizer", str(tokenizer_path(manifest, root))])
    return (f"the newest {source} version {other['id']} is cut into {window_length(other)}-token windows, "
            f"this plan's max_seq_len is {max_seq_len}: build the right one ({command}), declare it "
            f"(build = {{ from = [...] }} or --from {source}=PATH), or pin version = \"{other['id']}\" "
            f"to cut its windows (overlong counts are printed)")


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
    if (row.get("kind") or "train") == "eval":
        raise UserError(f"{manifest.where(key)}: version {row['id']} is an evaluation split; "
                        f"it cannot be mixed into training")


def build_argv(manifest: Manifest, root: Path, i: int, spec: SourceSpec, tok) -> list[str]:
    """The ``corpus.build`` command a source's ``build`` table stands for (shown to users)."""
    from corpus.request import as_flags

    return [spec.name, *as_flags(build_options(manifest, root, i, spec, tok)), "--quiet"]


def build_request(manifest: Manifest, root: Path, i: int, spec: SourceSpec, tok):
    """The :class:`corpus.request.BuildRequest` of a source's ``build`` table (one line naming
    the table's key when a build would reject it)."""
    from corpus.request import BuildRequest

    options = build_options(manifest, root, i, spec, tok)
    inputs = options.pop("from", None)
    if isinstance(inputs, str):
        inputs = [inputs]
    return BuildRequest.create(spec.name, inputs, quiet=True, **options)


def build_options(manifest: Manifest, root: Path, i: int, spec: SourceSpec, tok) -> dict:
    """``corpus.api.build_source`` keyword options: the source's ``build`` table plus what [data] decides."""
    for name in spec.build or {}:
        if name in RESERVED_BUILD_KEYS:
            raise UserError(f"{manifest.where(f'data.sources[{i}] ({spec.name}).build.{name}')}: "
                            f"set by the manifest's [data] section, not here")
    return {"tokenizer": str(tok.path), "max_seq_len": manifest.data.max_seq_len, "data_dir": str(root),
            **{name.replace("-", "_"): value for name, value in (spec.build or {}).items()}}


def _build(manifest: Manifest, root: Path, i: int, spec: SourceSpec, tok, log) -> str:
    from corpus.build import build_version

    where = manifest.where(f"data.sources[{i}] ({spec.name}).build")
    log(f"building {spec.name}: python -m corpus.build {' '.join(build_argv(manifest, root, i, spec, tok))}")
    try:
        built = build_version(build_request(manifest, root, i, spec, tok))
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    if built.status != "published":
        raise UserError(f"{where}: the built version failed validation (see python -m corpus.quality report)")
    return built.version_id
