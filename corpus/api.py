"""The Python API: what a notebook needs, typed, the CLIs' own code paths behind each verb.

    import corpus

    v = corpus.build_source("gsm8k", "../shared/data/gsm8k/train_sample.jsonl", tokenizer="tok.json")
    v.id, v.rows, v.tokens, v.status, v.quarantined, v.shard_paths
    corpus.query("SELECT source, sum(tokens) FROM versions GROUP BY 1")   # a polars DataFrame
    plan = corpus.plan("manifests/demo.toml")            # or a dict with the manifest's tables
    batch = next(corpus.batches(plan, batch_size=8))
    corpus.decode(batch.tokens[0], plan.tokenizer)

Every verb takes ``data_dir`` (default: ``$HRM_DATA_DIR`` or ``./data``, as the CLIs). A problem
raises :class:`CorpusError` with the same one-line message the CLI would print; a build's options
become a typed :class:`corpus.request.BuildRequest` (the declared defaults and checks of the CLI's
options) run by the build's own pipeline.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from corpus.errors import UserError as CorpusError

__all__ = ["CorpusError", "Version", "train_tokenizer", "build_source", "version", "versions", "query", "retier_version",
           "build_request", "verify_files", "plan", "open_plan", "batches", "decode", "flags"]


@dataclass(frozen=True)
class Version:
    """One registered version: its facts from the catalog and where its files are."""

    id: str
    source: str
    kind: str  # train | eval
    status: str  # published | failed
    rows: int
    tokens: int
    quarantined: int
    quarantine_reasons: dict[str, int]
    split_rows: dict[str, int]
    tokenizer_sha: str
    created_at: Any
    config: dict[str, Any]
    directory: Path
    shard_paths: list[Path]
    split_paths: dict[str, list[Path]]  # the catalog's split of each shard (eval shards are eval-<split>-N)
    quarantine_path: Path | None
    already_built: bool = False
    data_dir: Path = field(default=Path("data"), repr=False)

    def frame(self, split: str | None = None, columns: Sequence[str] | None = None):
        """The version's rows (one split or all) as a polars DataFrame (images left out by default)."""
        import polars as pl

        paths = self.shard_paths if split is None else self.split_paths.get(split, [])
        if not paths:
            raise CorpusError(f"version {self.id} has no {split or ''} shards (its splits: "
                              f"{', '.join(sorted(self.split_paths)) or 'none'})".replace("no  shards", "no shards"))
        frame = pl.concat([pl.read_parquet(p, columns=list(columns) if columns else None) for p in paths])
        if columns is None and "image" in frame.columns:
            frame = frame.drop("image")
        return frame

    def text(self, row: Mapping[str, Any]) -> str:
        """A row's prompt and target token ids decoded back to text (with this version's tokenizer)."""
        from corpus.tokenizer import tokenizer_for_sha

        tok = tokenizer_for_sha(self.data_dir, self.tokenizer_sha)
        return decode(list(row["prompt_ids"]) + list(row["target_ids"]), tok)


def _root(data_dir: str | Path | None) -> Path:
    from corpus.paths import data_root

    return data_root(str(data_dir) if data_dir is not None else None)


def flags(options: Mapping[str, Any]) -> list[str]:
    """``{"max_seq_len": 1024, "require_images": True}`` → ``--max-seq-len 1024 --require-images``
    (False/None are left out, a list gives several values): keyword options as CLI flags."""
    from corpus.request import as_flags

    return as_flags(options)


def train_tokenizer(out: str | Path, inputs: str | Path | Sequence[str | Path] | None = None, *,
                    synthetic: int = 0, vocab_size: int = 8192, min_frequency: int = 2, seed: int = 0,
                    fields: Sequence[str] | None = None, versions: Sequence[str] | None = None,
                    data_dir: str | Path | None = None):
    """Train a byte-level BPE ``tokenizer.json`` with <pad>/<bos>/<eos> on files (txt, json(l),
    parquet; globs, directories; only ``fields`` of records when given), registered ``versions``'
    texts and/or ``synthetic`` generated examples (``python -m corpus.tokenizer train``); returns
    its TokenizerInfo."""
    from corpus.tokenizer import train_tokenizer_file

    return train_tokenizer_file(out, inputs, synthetic=synthetic, vocab_size=vocab_size, min_frequency=min_frequency,
                                seed=seed, fields=fields, versions=versions, data_dir=_root(data_dir))


def build_source(source: str, inputs: str | Path | Sequence[str | Path] | None = None, *,
          data_dir: str | Path | None = None, quiet: bool = True, **options: Any) -> Version:
    """Build one immutable version of ``source`` (``python -m corpus.build SOURCE --from INPUTS``)
    and return it; a version built already is returned as it is (``already_built``).

    ``options`` are the CLI's flags by their Python names: ``split``, ``limit``, ``tokenizer``,
    ``special_tokens``, ``max_seq_len``, ``val_ratio``, ``seed``, ``workers``, ``role``,
    ``executor`` (``"local"`` or ``"ray"``), ``decontaminate``, and each source's own
    (``strip_calculator``, ``count``, ``tiers`` ...)."""
    from corpus.build import build_version

    request = build_request(source, inputs, data_dir=data_dir, quiet=quiet, **options)
    outcome = build_version(request)
    found = version(outcome.version_id, data_dir=_root(request.data_dir))
    return Version(**{**found.__dict__, "already_built": outcome.already_built})


def build_request(source: str, inputs: str | Path | Sequence[str | Path] | None = None, *,
                  data_dir: str | Path | None = None, quiet: bool = True, **options: Any):
    """The validated :class:`corpus.request.BuildRequest` for :func:`build_source`'s arguments
    (one CorpusError line when a build would reject them); serialisable with ``to_json``."""
    from corpus.request import BuildRequest

    return BuildRequest.create(source, inputs, data_dir=data_dir, quiet=quiet, **options)


def version(version_id: str, data_dir: str | Path | None = None) -> Version:
    """A registered version by id (or a source name: its newest published version)."""
    from corpus.catalog import Catalog

    root = _root(data_dir)
    catalog = Catalog(root)
    with catalog.connect(read_only=True) as con:
        def dicts(query: str, params: list) -> list[dict]:
            cur = con.execute(query, params)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r)) for r in cur.fetchall()]

        rows = dicts("SELECT * FROM versions WHERE id = ?", [version_id]) or dicts(
            "SELECT * FROM versions WHERE source = ? AND status = 'published' ORDER BY created_at DESC LIMIT 1",
            [version_id])
        if not rows:
            raise CorpusError(f"no version {version_id!r} in {catalog.path} (see corpus.versions())")
        v = rows[0]
        shards = dicts("SELECT split, path, rows FROM shards WHERE version = ? ORDER BY split, idx", [v["id"]])
        reasons = dicts("SELECT reason, count(*) AS n FROM quarantine WHERE version = ? GROUP BY 1", [v["id"]])
        q_file = dicts("SELECT path FROM files WHERE version = ? AND role = 'quarantine'", [v["id"]])
    split_rows: Counter = Counter()
    for s in shards:
        split_rows[s["split"]] += int(s["rows"])
    paths = [root / s["path"] for s in shards]
    split_paths: dict[str, list[Path]] = {}
    for s, path in zip(shards, paths):
        split_paths.setdefault(s["split"], []).append(path)
    return Version(
        id=v["id"], source=v["source"], kind=v.get("kind") or "train", status=v["status"], rows=int(v["rows"] or 0),
        tokens=int(v["tokens"] or 0), quarantined=sum(int(r["n"]) for r in reasons),
        quarantine_reasons={r["reason"]: int(r["n"]) for r in reasons}, split_rows=dict(split_rows),
        tokenizer_sha=v["tokenizer_sha"], created_at=v["created_at"], config=json.loads(v["config"] or "{}"),
        directory=paths[0].parent if paths else root, shard_paths=paths, split_paths=split_paths,
        quarantine_path=root / q_file[0]["path"] if q_file else None, data_dir=root,
    )


def versions(source: str | None = None, data_dir: str | Path | None = None):
    """The catalog's versions (newest first), optionally of one source, as a polars DataFrame."""
    where, params = ("WHERE source = ?", [source]) if source else ("", [])
    return query(f"SELECT id, source, kind, status, rows, tokens, created_at FROM versions {where} "
               "ORDER BY created_at DESC", data_dir=data_dir, params=params)


def query(sql: str, data_dir: str | Path | None = None, params: Sequence[Any] | None = None,
        pandas: bool = False):
    """Run ``sql`` over the catalog and the plans (their views read Parquet in place) into a polars
    DataFrame (``pandas=True``: a pandas one), under ``corpus.sql``'s rules: reading statements
    only, files of the data root only."""
    import duckdb

    from corpus.catalog import Catalog

    from corpus.sql import confine, refuse_writes

    root = _root(data_dir)
    with Catalog(root).connect(read_only=True) as con:
        confine(con, root)  # the audit surface of corpus.sql: files of the data root only, reads only
        refuse_writes(con, sql)
        try:
            relation = con.sql(sql, params=list(params) if params else None)
            if relation is None:
                raise CorpusError(f"query returned no rows to read: {sql[:80]}")
            return relation.df() if pandas else relation.pl()
        except duckdb.Error as exc:
            raise CorpusError(f"query failed: {str(exc).splitlines()[0]}") from None


def retier_version(version_id: str, rule: str, data_dir: str | Path | None = None) -> dict[int, int]:
    """Tiers of a version under another rule, from its stored features (``python -m corpus.retier``);
    returns rows per tier over all splits."""
    from corpus.retier import parse_args, retier as run

    argv = [version_id, "--rule", rule, "--quiet"] + (["--data-dir", str(data_dir)] if data_dir else [])
    with contextlib.redirect_stdout(io.StringIO()):
        run(parse_args(argv))
    from corpus.tiers import get_rule

    rule_id = get_rule(rule).id
    vid = version(version_id, data_dir).id
    rows = query("SELECT tier, sum(rows) AS rows FROM tiers WHERE version = ? AND rule = ? GROUP BY tier ORDER BY tier",
               data_dir, [vid, rule_id])
    return dict(zip(rows["tier"].to_list(), map(int, rows["rows"].to_list())))


def verify_files(data_dir: str | Path | None = None, versions: Sequence[str] | None = None) -> list[str]:
    """Re-hash every registered file (or those of ``versions``): the problems found (empty: all good)."""
    from corpus.verify import verify as run

    _, problems = run(_root(data_dir), versions=list(versions) if versions else None)
    return problems


def plan(manifest: str | Path | Mapping[str, Any], data_dir: str | Path | None = None, build_missing: bool = True,
         name: str = "notebook"):
    """Resolve a manifest (a TOML file, or a dict of its tables named ``name``) to its plan, building
    what it says how to build, and open it for reading (``corpus.mixing.Plan``)."""
    from corpus.mixing import open_plan as open_
    from corpus.mixing.manifest import load_manifest, manifest_from_dict
    from corpus.mixing.plan import make_plan

    root = _root(data_dir)
    m = manifest_from_dict(dict(manifest), name) if isinstance(manifest, Mapping) else load_manifest(manifest)
    result = make_plan(m, root, build_missing=build_missing, log=lambda _msg: None)
    return open_(root, result.id)


def open_plan(plan_id: str, data_dir: str | Path | None = None):
    """A registered plan by id, verified as the trainer opens it."""
    from corpus.mixing import open_plan as open_

    return open_(_root(data_dir), plan_id, build_missing=False)


def batches(plan, split: str = "train", batch_size: int = 8, seq_len: int | None = None,
            start: int = 0, data_dir: str | Path | None = None) -> Iterator[Any]:
    """Padded batches of a plan in plan order (``tokens``, ``lengths``, ``prompt_lens``, ...);
    ``plan`` is what :func:`plan` / :func:`open_plan` return, or a plan id (``"p..."``)."""
    from corpus.mixing import Plan, PlanReader

    if isinstance(plan, str):
        plan = open_plan(plan, data_dir)
    if not isinstance(plan, Plan):
        raise CorpusError(f"batches: plan must be corpus.plan(...) / corpus.open_plan(...) or a plan id, "
                          f"not {type(plan).__name__}")
    return PlanReader(plan, split, start=start).iter_batches(batch_size, seq_len)


def decode(ids: Sequence[int], tokenizer) -> str:
    """Token ids back to text (special tokens left out); ``tokenizer`` is a plan's or version's."""
    tok = getattr(tokenizer, "tokenizer", tokenizer)
    return tok.decode([int(i) for i in ids], skip_special_tokens=True)
