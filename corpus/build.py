"""``python -m corpus.build SOURCE``: build one immutable, content-addressed version of a source.

    records ─► normalize (source) ─► tokenize + tier (rows) ─► split by id hash ─► ShardWriter
       │              │                                                              │
       │              └─► quarantine (file:line, field, reason)                      ▼
       └─ --from files, globs, dirs | hub id         staging dir ─fsync, rename─► data/shards/<src>/<vid>
                                                            register in the catalog ─► publish (suites)

Nothing is registered until every file is complete; the same inputs, options, tokenizer and
code give the same version id, and a second run prints "already built: <id>" and writes nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from corpus.errors import BadRecord, UserError, disk_full, is_disk_full


def _global_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m corpus.build",
        description="Build one immutable version of a source into Parquet token shards.",
        add_help=False,
    )
    p.add_argument("source", help="gsm8k, wiki, mbpp, science_qa, humaneval, jsonl, parquet, synthetic:<task>")
    p.add_argument("--from", dest="inputs", nargs="+", metavar="PATH", help="local files, globs or directories")
    p.add_argument("--split", default="train", help="source split to read (default: train)")
    p.add_argument("--revision", help="hub dataset revision (commit, branch or tag) to read; the commit it "
                   "resolves to enters the version id (default: main)")
    p.add_argument("--hub-dataset", metavar="ID_OR_DIR", help="read this hub dataset, or a local dataset "
                   "repository (a clone or mirror), instead of the source's default one")
    p.add_argument("--limit", type=int, help="read at most N records")
    p.add_argument("--tokenizer", help="tokenizer.json, a Hugging Face tokenizer directory, or a hub id when "
                   "online (default: the data root's only tokenizer)")
    p.add_argument("--special-tokens", metavar="ROLE=TOKEN,...",
                   help="map pad/bos/eos to the tokenizer's own tokens, e.g. pad=<|endoftext|>,bos=<|endoftext|>,"
                   "eos=<|endoftext|> for GPT-2 (default: <pad>/<bos>/<eos>, or what an HF directory declares)")
    p.add_argument("--max-seq-len", type=int, default=512,
                   help="window length of document sources (wiki, plain text); examples are stored whole "
                        "and the mix manifest's max_seq_len decides at read time")
    p.add_argument("--val-ratio", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1, help="processes for normalize + tokenize")
    p.add_argument("--threads", "--tokenizer-num-threads", type=int, default=None,
                   help="tokenizer threads per process (default: the CPUs divided among the --workers)")
    p.add_argument("--batch-size", "--tokenizer-batch-size", type=int, default=8192)
    p.add_argument("--overlong", help=argparse.SUPPRESS)  # moved to the mix manifest: refused with a hint
    p.add_argument("--max-bad-ratio", type=float, default=0.01)
    p.add_argument("--data-dir", default=None, help="data root (default: $HRM_DATA_DIR or ./data)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--timings", metavar="FILE", help="write where the build's time went (seconds per phase and "
                   "thread, wall, CPU) as JSON to FILE; the summary's last line shows the largest phases")
    p.add_argument("--rebuild", action="store_true", help="build the version again even if registered (its "
                   "files were damaged: same inputs give the same id and the same bytes)")
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="who runs the build's tasks: processes on this machine (default) or Ray tasks "
                        "(pip install 'hrm-corpus[ray]'); the shards and the version id are the same")
    p.add_argument("--ray-address", metavar="ADDR", help="join this Ray cluster (e.g. auto, or ray://head:10001); "
                   "without it --executor ray starts a local one with --workers CPUs")
    p.add_argument("--task-records", type=int, default=None, metavar="N",
                   help="records per task (default %d; a change gives other shard files, so it enters the "
                        "version id)" % 65536)
    p.add_argument("--role", choices=["train", "eval"], help="register as training data or as an evaluation set "
                   "(default: the source's; e.g. gsm8k --split test --role eval)")
    from corpus.quality import decontaminate, eval_guard, near_dedup

    decontaminate.add_arguments(p)
    near_dedup.add_arguments(p)
    eval_guard.add_arguments(p)
    return p


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Two passes: the source name decides which extra flags exist."""
    from corpus.sources import get_source, source_names

    base = _global_parser()
    if not argv or argv[0] in ("-h", "--help"):
        full = argparse.ArgumentParser(parents=[base], prog=base.prog, description=base.description,
                                       epilog="sources: " + ", ".join(source_names()))
        full.parse_args(argv or ["--help"])
    known, _ = base.parse_known_args(argv)
    cls = get_source(known.source)
    full = argparse.ArgumentParser(parents=[base], prog=f"{base.prog} {known.source}")
    cls.add_arguments(full)
    args = full.parse_args(argv)
    args.source_cls = cls
    return args


def request_from_argv(argv: list[str]):
    """``python -m corpus.build`` argv as a :class:`corpus.request.BuildRequest` (the CLI's parser:
    --help and usage errors as the command prints them)."""
    from corpus.request import BuildRequest

    return BuildRequest.from_namespace(parse_args(argv))


@dataclass
class BuildStats:
    records: int = 0
    rows: Counter = field(default_factory=Counter)
    tokens: Counter = field(default_factory=Counter)
    tiers: Counter = field(default_factory=Counter)
    quarantined: list = field(default_factory=list)
    counters: Counter = field(default_factory=Counter)  # source.count(...) events, e.g. "image missing"
    lengths: dict = field(default_factory=dict)  # split -> [n_tokens arrays], for the length percentiles
    near: object = None  # corpus.quality.near_dedup.NearDedup when near-dedup ran
    near_dropped: list = field(default_factory=list)  # Rejected rows removed by --near-dedup drop

    def length_percentiles(self, split: str) -> dict[str, int]:
        """p50/p95/p99/max tokens per row of ``split``: what a user reads to pick a context length."""
        parts = self.lengths.get(split) or []
        n = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        if not len(n):
            return {}
        p50, p95, p99 = np.percentile(n, [50, 95, 99], method="higher")
        return {"p50": int(p50), "p95": int(p95), "p99": int(p99), "max": int(n.max())}

    def longest(self) -> int:
        return max((int(a.max()) for parts in self.lengths.values() for a in parts if len(a)), default=0)


# -- worker side ------------------------------------------------------------------------------

_WORKER: dict = {}


def _init_worker(args: argparse.Namespace, tokenizer_path: str, threads: int, pool_worker: bool = False) -> None:
    if pool_worker:
        from corpus.buildlock import die_with_parent

        die_with_parent()  # a killed build leaves no worker behind
    os.environ["RAYON_NUM_THREADS"] = str(threads)
    from corpus.rows import RowOptions
    from corpus.tokenizer import load_tokenizer

    _WORKER["source"] = args.source_cls(args)
    _WORKER["tok"] = load_tokenizer(tokenizer_path)
    _WORKER["one_split"] = getattr(args, "one_split", None)  # an evaluation version's rows: all under its split
    _WORKER["opts"] = RowOptions(
        source=args.source, max_seq_len=args.max_seq_len, val_ratio=args.val_ratio, seed=args.seed,
        stride=getattr(args, "stride", 0) or 0,
        prompt_ratio=getattr(args, "prompt_ratio", 0.5),
    )
    _WORKER["near"] = None  # signatures are per-row work: made here, like the rows (when this build asks)
    if getattr(args, "near_dedup_active", False):
        from corpus.quality.near_dedup import NearDedupConfig

        _WORKER["near"] = NearDedupConfig.from_args(args)


def _prepare(batch):
    """Normalize one batch of raw records and encode its texts (the GIL-free, heavy part)."""
    from corpus.loading import Unreadable
    from corpus.rows import Rejected, encode_items

    source, tok = _WORKER["source"], _WORKER["tok"]
    clock = _WORKER.get("clock")
    t0, c0 = time.perf_counter(), time.thread_time()
    items, rejected = [], []
    for rec in batch:
        if isinstance(rec.data, Unreadable):
            rejected.append(Rejected(rec.ref, rec.data.field, rec.data.reason))
            continue
        try:
            out = source.normalize(rec)
            examples = [out] if not isinstance(out, (list, tuple)) and out is not None else list(out or [])
            for ex in examples:
                _check_example(ex, source)
                items.append((rec.ref, ex))
        except BadRecord as exc:
            rejected.append(Rejected(rec.ref, exc.field, exc.reason))
    t1, c1 = time.perf_counter(), time.thread_time()
    encoded = encode_items(items, tok)
    if clock is not None:
        clock.add("normalize", t1 - t0, "encoder", c1 - c0)
        clock.add("encode", time.perf_counter() - t1, "encoder")
    return items, rejected, len(batch), source.take_counters(), encoded


def _finish(prepared):
    """Turn a prepared batch into rows per split (windows, tiers, split; examples stay whole),
    each with its Parquet table and row facts: all the per-row work happens where the batch was
    encoded, in a worker process with ``--workers``."""
    from corpus.quality.facts import table_facts
    from corpus.rows import tokenize_examples
    from corpus.shards import Rows, rows_table

    items, rejected, n_records, counters, encoded = prepared
    source, tok, opts = _WORKER["source"], _WORKER["tok"], _WORKER["opts"]
    clock = _WORKER.get("clock")
    t0, c0 = time.perf_counter(), time.thread_time()
    by_split = tokenize_examples(items, tok, opts, source.tier, encoded)
    t1, c1 = time.perf_counter(), time.thread_time()
    with_image = bool(getattr(source, "has_images", False))
    out = {}
    for split, batch in by_split.items():
        split = _WORKER.get("one_split") or split
        table = rows_table(batch, opts.source, split, with_image)
        out[split] = Rows(batch, table, table_facts(table, with_image))
    t2, c2 = time.perf_counter(), time.thread_time()
    if clock is not None:
        clock.add("rows", t1 - t0, cpu=c1 - c0)
        clock.add("table+facts", t2 - t1, cpu=c2 - c1)
    signatures = {}
    near = _WORKER.get("near")
    if near is not None:
        from corpus.quality.near_dedup import row_texts

        signatures = {_WORKER.get("one_split") or split: near.signatures(row_texts(b.prompts, b.targets))
                      for split, b in by_split.items()}  # keyed like ``out``
        if clock is not None:
            clock.add("near-dedup signatures", time.perf_counter() - t2, cpu=time.thread_time() - c2)
    return out, rejected, n_records, counters, signatures


def _process(batch):
    """Both steps for one batch (a worker process's unit of work), with the worker's phase times."""
    from corpus.phases import PhaseClock

    clock = _WORKER["clock"] = PhaseClock()
    out = _finish(_prepare(batch))
    return (*out, clock.totals())


def _check_example(ex, source) -> None:
    if not isinstance(ex.prompt, str) or not ex.prompt.strip():
        raise BadRecord("empty prompt", "prompt")
    if source.requires_target and not ex.document and not (isinstance(ex.target, str) and ex.target.strip()):
        raise BadRecord("empty target", "target")


# -- orchestration ----------------------------------------------------------------------------

BATCH_CHARS = 4 << 20  # cut batches of long documents by size too, so encode overlaps writing


def _batches(records: Iterable, size: int, max_chars: int = BATCH_CHARS) -> Iterator[list]:
    """Lists of at most ``size`` records and about ``max_chars`` characters of text."""
    batch: list = []
    chars = 0
    for rec in records:
        batch.append(rec)
        if isinstance(rec.data, dict):
            chars += sum(len(v) for v in rec.data.values() if isinstance(v, str))
        if len(batch) >= size or chars >= max_chars:
            yield batch
            batch, chars = [], 0
    if batch:
        yield batch


def _prefetch(fn, items: Iterable, depth: int = 2, clock=None) -> Iterator:
    """``map(fn, items)`` computed one step ahead in a thread: tokenizers release the GIL, so the
    next batch is encoded while this one is written. Time spent waiting for a result is the
    ``wait`` phase."""
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    def result(future):
        t0 = time.perf_counter()
        out = future.result()
        if clock is not None:
            clock.add("wait", time.perf_counter() - t0)
        return out

    with ThreadPoolExecutor(1) as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > depth:
                yield result(pending.popleft())
        while pending:
            yield result(pending.popleft())


@dataclass(frozen=True)
class BuildOutcome:
    """What a build ended with: the version id, its status, and whether it existed already."""

    version_id: str
    status: str  # published | failed
    already_built: bool = False
    rows: int = 0
    tokens: int = 0


def build(request) -> int:
    """The CLI's exit code for :func:`build_version`: 0 when the version is published."""
    return 0 if build_version(request).status == "published" else 1


@dataclass
class VersionIdentity:
    """What decides a version's id, computed exactly as a build computes it (nothing built yet)."""

    version_id: str
    root: Path
    catalog: object  # corpus.catalog.Catalog
    source: object  # the source instance
    kind: str  # train | eval
    tok: object  # TokenizerInfo
    files: list | None
    hub: str | None
    fingerprint: str
    config: dict
    decontam: object
    near: object = None  # corpus.quality.near_dedup's prepared stage, None when off or skipped
    args: object = None  # the request's settings as the build decided them (threads, an eval set's split)


def identify_version(request) -> VersionIdentity:
    """The id ``request`` (a :class:`corpus.request.BuildRequest`) would build (inputs fingerprinted, hub pinned, options, tokenizer, code):
    the mixer resolves a manifest's ``build`` table through this, so it never mistakes another
    version of the same source for the declared one."""
    from corpus.catalog import Catalog
    from corpus.flags import check_build_flags
    from corpus.loading import expand_paths
    from corpus.paths import data_root
    from corpus.tokenizer import install_tokenizer, load_tokenizer, parse_specials
    from corpus.versioning import code_version, input_fingerprint, version_id

    args = request.settings()
    if args.threads is None:  # each worker process gets its share of the CPUs
        args.threads = max(1, (os.cpu_count() or 1) // max(1, args.workers))
    check_build_flags(args)
    os.environ["RAYON_NUM_THREADS"] = str(max(1, args.threads))
    root = data_root(args.data_dir)
    catalog = Catalog(root)
    source = args.source_cls(args)
    if args.role:
        source.role = args.role
    kind = "eval" if source.is_eval_split(args.split) else source.role
    if kind == "eval":  # a benchmark is one split, the one it is registered as: no train/val inside a test set
        args.split = source.registered_split(args.split)
        args.val_ratio, args.one_split = 0.0, args.split
    from corpus.quality import near_dedup
    from corpus.quality.decontaminate import prepare

    with catalog.session():  # one connection for these lookups, released before any long work
        tok = install_tokenizer(load_tokenizer(_tokenizer_path(args, root, catalog),
                                               parse_specials(args.special_tokens)), root, catalog)
        decontam = prepare(args, catalog, root, kind)
    if kind == "eval" and getattr(args, "near_dedup", "off") == "drop":
        args.near_dedup = "flag"  # evaluation sets are kept whole: their near-duplicates are recorded only
    near, args.near_dedup_skipped = near_dedup.prepare(args, kind)
    args.near_dedup_active = near is not None
    files = expand_paths(args.inputs) if args.inputs is not None else None  # never falls back to the hub
    hub = revision = None
    if files is None and getattr(source, "reads_hub", True):
        from corpus.hub import resolve_hub

        pinned = resolve_hub(source.hub_id, args.split, args.revision)
        revision = pinned.revision if pinned.files is None else "content"
        hub = f"hub:{source.hub_id}:{source.hub_config}:{args.split}"
        if pinned.files is not None:  # a local dataset repository: read and fingerprinted like --from files
            files = pinned.files
        else:
            hub += f"@{pinned.revision or 'unresolved'}"
            args.resolved_revision = pinned.revision
    fingerprint = input_fingerprint(files, extra=hub or "")
    config = {
        # examples are stored whole: the length only shapes document windows, so only they depend on it
        "split": args.split, "limit": args.limit, "max_seq_len": args.max_seq_len if source.windows else None,
        "layout": "windows" if source.windows else "examples", "val_ratio": args.val_ratio,
        "seed": args.seed, "tier_rule": source.tier_rule.id,
        "options": source.options(), "role": kind,
        "decontamination": decontam.config if decontam else None, "quality": {"max_dup_rate": args.max_dup_rate},
        "near_dedup": near.config.version_config() if near else None,  # drop only: it changes the rows kept
        "hub": {"dataset": source.hub_id, "revision": revision} if hub else None,
    }
    if args.task_records is not None:  # other task boundaries give other shard files
        config["task_records"] = args.task_records
    if kind != "eval":
        from corpus.quality.eval_guard import refuse_eval_inputs

        refuse_eval_inputs(args, source, files, fingerprint, catalog)
    vid = version_id(args.source, fingerprint, config, tok.sha256, code_version(args.source_cls))
    return VersionIdentity(vid, root, catalog, source, kind, tok, files, hub, fingerprint, config, decontam, near,
                           args)


def build_version(request) -> BuildOutcome:
    """Build the version a :class:`corpus.request.BuildRequest` describes, or find it built already."""
    from corpus.paths import version_dir

    from corpus.phases import PhaseClock

    clock = PhaseClock()
    end_setup = clock.start("setup")
    ident = identify_version(request)
    args = ident.args
    root, catalog, vid = ident.root, ident.catalog, ident.version_id
    final_dir = version_dir(root, args.source, vid)
    from corpus.buildlock import version_lock

    with version_lock(final_dir, catalog.timeout):  # held until registered: one build per version
        outcome = _build_locked(ident, final_dir, clock, end_setup)
        if outcome.status == "published":  # an s3:// root: objects, then manifest, then registered there
            from corpus.storage import publish_remote

            publish_remote(root, catalog, vid, quiet=args.quiet)
    if args.timings:
        clock.write(args.timings, version=outcome.version_id, status=outcome.status,
                    already_built=outcome.already_built, rows=outcome.rows, tokens=outcome.tokens,
                    workers=args.workers, threads=args.threads)
    return outcome


def _build_locked(ident: VersionIdentity, final_dir: Path, clock, end_setup) -> BuildOutcome:
    """Build the version ``ident`` names under its lock: reuse, resume or run its tasks, then register."""
    from corpus.buildlock import reclaim_staging
    from corpus.flags import ratio_text
    from corpus.paths import quarantine_path
    from corpus.versioning import input_fingerprint

    args, catalog, root, vid = ident.args, ident.catalog, ident.root, ident.version_id
    source, kind, tok, files, decontam = ident.source, ident.kind, ident.tok, ident.files, ident.decontam
    existing = catalog.version(vid)
    if existing and args.rebuild:  # damaged files (corpus.verify, a reader's refusal): same id, fresh files
        print(f"rebuilding {vid} ({existing['status']})", file=sys.stderr)
        _forget(catalog, vid)
        shutil.rmtree(final_dir, ignore_errors=True)
        shutil.rmtree(final_dir.with_name(f".{vid}.tasks"), ignore_errors=True)
        existing = None
    if existing and existing["status"] in ("published", "failed"):
        print(f"already built: {vid} ({existing['status']}, {existing['rows']} rows, {existing['tokens']} tokens)")
        end_setup()
        return BuildOutcome(vid, existing["status"], already_built=True, rows=int(existing["rows"] or 0),
                            tokens=int(existing["tokens"] or 0))
    if existing:  # an interrupted earlier attempt (no build of it is alive: we hold its lock)
        _forget(catalog, vid)
    reclaim_staging(final_dir)  # left by builds of this version killed before their rename
    tasks_root = final_dir.with_name(f".{vid}.tasks")  # finished tasks of a killed build: reused

    if decontam:
        decontam.shard_dir = str(final_dir.relative_to(root))
    staging = final_dir.with_name(f".{vid}.staging-{os.getpid()}")
    staging.mkdir(parents=True)
    end_setup()
    try:
        stats, shard_files, rejected = _run_pipeline(args, source, tok, files, staging, decontam, kind, clock,
                                                     ident.near, tasks_root, vid)
        end_finish = clock.start("finish")
        from corpus.quality.eval_guard import NOT_DECONTAMINATED, not_decontaminated

        unchecked = not_decontaminated(source, kind, decontam)
        if unchecked:
            stats.counters[NOT_DECONTAMINATED] = 1
        if files is not None and input_fingerprint(files, extra=ident.hub or "") != ident.fingerprint:
            raise UserError(f"input changed while building ({', '.join(map(str, files[:3]))}"
                            f"{' ...' if len(files) > 3 else ''}): nothing registered; build again")
        bad = len(rejected)
        if stats.records == 0:
            raise UserError(f"no records read from {', '.join(map(str, files or [ident.hub]))}")
        if bad / max(1, stats.records) > args.max_bad_ratio:
            first = rejected[0]
            shown, limit = ratio_text(bad / stats.records, args.max_bad_ratio)
            raise UserError(
                f"build failed: {bad} of {stats.records} records bad ({shown} > --max-bad-ratio {limit}); "
                f"first: {first.ref}: {first.field + ': ' if first.field else ''}{first.reason}"
            )
        if sum(stats.rows.values()) == 0:
            raise UserError("build produced no rows")
        rejected = rejected + stats.near_dropped  # quarantined, but not bad records: after the ratio check
        q_path = quarantine_path(root, args.source, vid)
        if rejected:
            _write_quarantine(q_path, rejected)
        if final_dir.exists():  # left by a crash before registration (the catalog has no row for it)
            shutil.rmtree(final_dir)
        os.replace(staging, final_dir)
        end_finish()
    except Exception as exc:
        if isinstance(exc, UserError):  # the input or options are at fault: a rerun would not reuse these tasks
            shutil.rmtree(tasks_root, ignore_errors=True)
        if is_disk_full(exc) and not isinstance(exc, UserError):
            raise disk_full(f"{args.source} version {vid} (its shards in {staging})", exc) from None
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    seconds = time.perf_counter() - clock.started
    try:
        with catalog.session():
            outcome = _register_and_publish(ident, final_dir, Built(shard_files, stats, rejected,
                                                                    q_path if rejected else None, unchecked, seconds),
                                            clock)
        shutil.rmtree(tasks_root, ignore_errors=True)  # registered: the tasks' files are the version's now
        return outcome
    except Exception as exc:
        if is_disk_full(exc) and not isinstance(exc, UserError):
            raise disk_full(f"the catalog {catalog.path} (registering {args.source} version {vid})", exc) from None
        raise


@dataclass
class Built:
    """What the tasks produced, checked and moved into the version's folder: what gets registered."""

    shard_files: list
    stats: BuildStats
    rejected: list
    quarantine: Path | None  # the quarantine file, when anything was rejected
    unchecked: str | None  # the note of an evaluation set built without its decontamination check
    seconds: float


def _register_and_publish(ident: VersionIdentity, final_dir: Path, built: Built, clock) -> BuildOutcome:
    """Register the complete version, then validate it: published or failed."""
    args, catalog, root, vid, source, decontam = ident.args, ident.catalog, ident.root, ident.version_id, ident.source, ident.decontam
    shard_files, stats, rejected, unchecked = built.shard_files, built.stats, built.rejected, built.unchecked
    with clock.phase("register"):
        _register(catalog, root, args, source, vid, ident.fingerprint, ident.config, ident.tok, final_dir, shard_files,
                  stats, rejected, built.quarantine, built.seconds)
        if decontam:
            decontam.record(catalog, vid)
        if stats.near is not None:
            _record_near(catalog, root, args.source, ident.kind, vid, final_dir, shard_files, stats.near)
    from corpus.publish import publish

    with clock.phase("validate"):
        # the facts taken on the rows as they were written (each file was read back and compared)
        known = {str((final_dir / s.parquet.name).relative_to(root)): s.facts for s in shard_files if s.facts}
        status, failures = publish(catalog, root, vid, facts=known)
    with clock.phase("summary"):
        _print_summary(args, source, vid, stats, rejected, status, failures, time.perf_counter() - clock.started,
                       clock)
    if decontam:
        print(decontam.summary())
    if stats.near is not None:
        print(stats.near.summary())
    elif getattr(args, "near_dedup_skipped", None):
        print(args.near_dedup_skipped)
    if unchecked:
        print(unchecked)
    return BuildOutcome(vid, status, rows=sum(stats.rows.values()), tokens=sum(stats.tokens.values()))


def _record_near(catalog, root: Path, source_name: str, kind: str, vid: str, final_dir: Path, shard_files, near):
    """The version's near-duplicates (within, and for training data across the latest version of
    every other source) and its signature file, into the catalog."""
    from corpus.atomic import sha256_file
    from corpus.quality.near_dedup import record, signatures_path
    from corpus.quality.near_dedup_across import compare

    if kind != "eval":
        signatures, refs = near.kept(shard_files)
        compare(catalog, root, vid, source_name, near, signatures, refs,
                {(s.split, s.idx): final_dir / s.parquet.name for s in shard_files})
    path = signatures_path(final_dir, near.config)
    with catalog.connect() as con:
        record(con, vid, near)
        if path.exists():
            con.execute("INSERT OR REPLACE INTO files VALUES (?, ?, 'near-signatures', ?, ?)",
                        [str(path.relative_to(root)), vid, sha256_file(path), path.stat().st_size])


def _tokenizer_path(args, root: Path, catalog) -> str | Path:
    if args.tokenizer:
        return args.tokenizer
    from corpus.paths import tokenizer_dir
    from corpus.tokenizer import SPECIALS_SUFFIX

    folder = tokenizer_dir(root)
    known = sorted(p for p in folder.glob("*.json") if not p.name.endswith(SPECIALS_SUFFIX)) if folder.exists() else []
    if len(known) == 1:
        return known[0]
    if known:
        names = ", ".join(str(p) for p in known[:3]) + (f" and {len(known) - 3} more" if len(known) > 3 else "")
        raise UserError(f"no --tokenizer given and the data root holds {len(known)} tokenizers ({names}): "
                        "pass --tokenizer PATH to choose one")
    raise UserError("no --tokenizer given and the data root holds none: pass --tokenizer PATH (a tokenizer.json, "
                    "a Hugging Face tokenizer directory or a hub id) or train one with python -m corpus.tokenizer train ...")


TASK_RECORDS = 65_536  # records per task (--task-records)
TASK_CHARS = 8 << 20  # and about this much text: tasks of long documents stay a few seconds of work
TASK_MANIFEST = "task.json"  # written last: a task with it is finished
TASK_RESULT = "result.pkl"  # the rows' facts, quarantine, decontamination hits, signatures (for the driver)


@dataclass
class TaskContext:
    """What every task of one build shares (sent once to each worker process or Ray worker)."""

    token: str  # the build's version id: a worker keeps its tokenizer and source while it stays the same
    args: object  # the request's settings as the build decided them
    tokenizer_path: str
    token_dtype: str
    kind: str
    with_image: bool
    tasks_root: str
    decontam: object = None  # corpus.quality.decontaminate.Decontaminator (hits start empty in a task)


def _task_key(records: list) -> dict:
    """What identifies a task's input beside its index (checked before a finished task is reused)."""
    return {"records": len(records), "first": records[0].ref, "last": records[-1].ref}


def _task_dir(tasks_root, index: int) -> Path:
    return Path(tasks_root) / f"t{index:06d}"


def cut_tasks(records: Iterable, task_records: int, task_chars: int = TASK_CHARS) -> Iterator[list]:
    """The input cut into tasks: consecutive records, at most ``task_records`` of them and about
    ``task_chars`` characters of text. The cut depends on the input only, never on workers,
    machines or --batch-size, so the shard files (and the version id) do not either."""
    return _batches(records, task_records, task_chars)


def finished_task(tasks_root, index: int, key: dict) -> dict | None:
    """The manifest of task ``index`` when an earlier run finished it for this same input (its
    files all there, with the sizes it recorded), else None."""
    path = _task_dir(tasks_root, index) / TASK_MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("key") != key:
        return None
    folder = path.parent
    for name, size in manifest["files"].items():
        try:
            if (folder / name).stat().st_size != size:
                return None
        except OSError:
            return None
    return manifest


def run_task(ctx: TaskContext, index: int, records: list, key: dict) -> dict:
    """One task: its records become rows (normalize, tokenize, tiers, split), decontaminated and
    signed for near-dedup where asked, written as its own shards; its manifest goes last (temp,
    fsync, rename), so a task with a manifest is complete. Runs in any process that can import
    corpus (the build's, a worker process, a Ray worker)."""
    import copy
    import pickle
    import uuid

    from corpus.atomic import atomic_path, sha256_file
    from corpus.phases import PhaseClock
    from corpus.shards import ShardWriter

    if _WORKER.get("token") != ctx.token:
        _init_worker(ctx.args, ctx.tokenizer_path, ctx.args.threads)
        _WORKER["token"] = ctx.token
    final = _task_dir(ctx.tasks_root, index)
    # each attempt writes its own folder and renames it into place when complete: a retried
    # task, or a worker left over from a killed driver, never writes into another's files
    folder = final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}")
    folder.mkdir(parents=True)
    clock = _WORKER["clock"] = PhaseClock()
    decontam = None
    if ctx.decontam is not None:
        decontam = copy.copy(ctx.decontam)
        decontam.hits, decontam.shard_dir = [], ""
    writers: dict = {}
    rejected, counters, n_records = [], Counter(), 0
    signed: dict[str, list] = {}
    batches = _batches(records, ctx.args.batch_size)
    # the next batch is encoded in a thread while this one becomes rows and is written
    for by_split, bad, n, counts, signatures in map(_finish, _prefetch(_prepare, batches, clock=clock)):
        n_records += n
        counters.update(counts)
        rejected.extend(bad)
        for split, batch in by_split.items():
            if split not in writers:
                writers[split] = ShardWriter(folder, ctx.args.source, split, ctx.token_dtype, ctx.with_image,
                                             kind=ctx.kind)
            if decontam:  # before the shard: shards are immutable once written
                with clock.phase("decontaminate"):
                    before = batch
                    batch = decontam.apply(batch, split, writers[split].shard_of)
            if signatures:
                sig = signatures[split]
                if decontam and len(batch) != len(before):  # the signatures of the rows kept
                    at = {row_id: k for k, row_id in enumerate(before.ids)}
                    sig = sig[[at[row_id] for row_id in batch.ids]]
                signed.setdefault(split, []).append((list(batch.ids), sig))
            with clock.phase("write"):
                writers[split].add(batch)
    with clock.phase("write"):
        shards = [sf for w in writers.values() for sf in w.close()]
    result = {"shards": shards, "rejected": rejected, "counters": dict(counters), "records": n_records,
              "hits": decontam.hits if decontam else [], "signatures": signed, "times": clock.totals()}
    with atomic_path(folder / TASK_RESULT) as tmp:
        with open(tmp, "wb") as fh:
            pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
    files = {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()}
    rows, tokens = Counter(), Counter()
    for sf in shards:
        rows[sf.split] += sf.rows
        tokens[sf.split] += sf.tokens_total
    manifest = {"task": index, "key": key, "files": files, "result_sha256": sha256_file(folder / TASK_RESULT),
                "records": n_records, "rejected": len(rejected), "rows": dict(rows), "tokens": dict(tokens),
                "shards": [{"split": sf.split, "idx": sf.idx, "rows": sf.rows, "tokens": sf.tokens_total,
                            "sha256": sf.sha256} for sf in shards]}
    with atomic_path(folder / TASK_MANIFEST) as tmp:
        tmp.write_text(json.dumps(manifest, sort_keys=True))
    _publish_task(folder, final, key)
    return manifest


def _publish_task(folder: Path, final: Path, key: dict) -> None:
    """Rename a complete task folder into place; a folder there without a valid manifest (an
    attempt that died) is replaced, a finished one (a twin attempt) is kept and ours dropped."""
    from corpus.atomic import fsync_dir

    for _ in range(3):
        try:
            os.rename(folder, final)
            fsync_dir(final.parent)
            return
        except OSError:
            if finished_task(final.parent, int(final.name[1:]), key) is not None:
                shutil.rmtree(folder, ignore_errors=True)
                return
            shutil.rmtree(final, ignore_errors=True)
    raise UserError(f"{final}: could not put the task's files in place")


def _load_task(tasks_root, manifest: dict) -> dict:
    """A finished task's result, checked against its manifest's checksum."""
    import pickle

    from corpus.atomic import sha256_file

    path = _task_dir(tasks_root, manifest["task"]) / TASK_RESULT
    if sha256_file(path) != manifest["result_sha256"]:
        raise UserError(f"{path}: does not match its task manifest (damaged): remove {path.parent} and build again")
    with open(path, "rb") as fh:
        return pickle.load(fh)


def _run_pipeline(args, source, tok, files, staging: Path, decontam=None, kind: str = "train", clock=None, near=None,
                  tasks_root: Path | None = None, token: str = ""):
    """Read the input, cut it into tasks, run the unfinished ones on the executor, and gather
    every task's shards (in task order, renumbered) into ``staging``."""
    from corpus.executors import make_executor
    from corpus.phases import PhaseClock

    clock = clock or PhaseClock()
    tasks_root = Path(tasks_root or staging.with_name(staging.name + ".tasks"))
    records = source.records([str(f) for f in files] if files is not None else None, args.split, args.limit)
    if args.limit is not None:
        records = itertools.islice(records, args.limit)
    with_image = bool(getattr(source, "has_images", False))
    ctx = TaskContext(token, args, str(tok.path), tok.token_dtype, kind, with_image, str(tasks_root), decontam)
    manifests: dict[int, dict] = {}
    skipped = [0]

    def todo():
        for index, batch in enumerate(_timed(cut_tasks(records, args.task_records or TASK_RECORDS), clock, "read")):
            key = _task_key(batch)
            done = finished_task(tasks_root, index, key)
            if done is not None:
                manifests[index] = done
                skipped[0] += 1
                continue
            yield index, batch, key

    progress = _progress(args)
    executor = make_executor(args, ctx, run_task)
    try:
        with progress:
            task = progress.add_task(f"building {args.source}", total=None)
            tokens = 0
            for manifest in executor.run(todo()):
                manifests[manifest["task"]] = manifest
                tokens += sum(manifest["tokens"].values())
                progress.update(task, advance=1, description=f"building {args.source}: {len(manifests)} tasks, "
                                f"{tokens:,} tokens")
        if skipped[0]:
            print(f"resumed: {skipped[0]} of {len(manifests)} tasks were finished already", file=sys.stderr)
        stats, shard_files, rejected = _gather(args, source, tok, tasks_root, manifests, staging, decontam, clock,
                                               near)
        stats.counters.update(source.take_counters())  # counted while reading records
        if near is not None:  # the band step runs per band on the executor's worker processes
            with clock.phase("near-dedup"):
                shard_files = _near_dedup(args, near, shard_files, stats, tok, with_image, kind, executor.pool)
            if decontam is not None and stats.near_dropped:
                _relocate_hits(decontam, shard_files)
    finally:
        executor.close()
    for s in shard_files:
        for tier, (rows, tokens) in s.tier_counts.items():
            stats.tiers[(s.split, tier)] += rows
    return stats, shard_files, rejected


def _gather(args, source, tok, tasks_root: Path, manifests: dict, staging: Path, decontam, clock, near):
    """Every task's shards linked into ``staging`` under version-wide numbers (task order), and
    the build's counts, quarantine, decontamination hits and near-dedup signatures from the
    tasks' results. The task files stay until the version is registered (a rerun reuses them)."""
    import dataclasses

    from corpus.shards import sidecar_paths

    stats = BuildStats()
    rejected: list = []
    next_idx: Counter = Counter()
    shard_files = []
    with clock.phase("gather"):
        for index in sorted(manifests):
            result = _load_task(tasks_root, manifests[index])
            for name, (seconds, cpu) in result["times"].items():
                clock.add(name, seconds, "tasks", cpu)  # summed over the tasks
            stats.records += result["records"]
            stats.counters.update(result["counters"])
            rejected.extend(result["rejected"])
            renamed: dict[str, str] = {}
            for sf in sorted(result["shards"], key=lambda s: (s.split, s.idx)):
                folder = _task_dir(tasks_root, index)
                idx = next_idx[sf.split]
                next_idx[sf.split] += 1
                old = folder / sf.parquet.name
                new = staging / f"{sf.split}-{idx:05d}.parquet"
                renamed[old.name] = new.name
                moved = {}
                for a, b in zip((old, *sidecar_paths(old)), (new, *sidecar_paths(new))):
                    b.parent.mkdir(parents=True, exist_ok=True)
                    _link(a, b)
                    moved[str(a.relative_to(folder))] = str(b.relative_to(staging))
                shard_files.append(dataclasses.replace(
                    sf, idx=idx, parquet=new, tokens=sidecar_paths(new)[0], index=sidecar_paths(new)[1],
                    sha256={moved[k]: v for k, v in sf.sha256.items()},
                    xxh3={moved[k]: v for k, v in sf.xxh3.items()},
                    bytes={moved[k]: v for k, v in sf.bytes.items()}))
                stats.rows[sf.split] += sf.rows
                stats.tokens[sf.split] += sf.tokens_total
            for split, parts in result["signatures"].items():
                for ids, sig in parts:
                    near.add(split, ids, sig)
            if decontam is not None:
                for hit in result["hits"]:
                    name = renamed.get(hit.shard, hit.shard)
                    decontam.hits.append(dataclasses.replace(
                        hit, shard=f"{decontam.shard_dir}/{name}" if decontam.shard_dir else name))
    from corpus.shards import open_sidecars

    for sf in shard_files:  # the length percentiles: every row's token count, from the sidecar index
        stats.lengths.setdefault(sf.split, []).append(np.asarray(open_sidecars(sf.parquet)[1][:, 2]))
    return stats, shard_files, rejected


def _link(src: Path, dst: Path) -> None:
    """``dst`` as a hard link of ``src`` (same bytes, no copy); a copy where links are refused."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _near_dedup(args, near, shard_files, stats: BuildStats, tok, with_image: bool, kind: str, pool):
    """Find the near-duplicates among the rows written; with ``drop`` write the affected splits
    again without them and count the rows that remain. The kept rows' signatures are saved beside
    the shards for later builds' comparison across sources."""
    from corpus.quality.near_dedup import rewrite_without, save_signatures
    from corpus.rows import Rejected
    from corpus.shards import ShardWriter, open_sidecars

    near.run(shard_files, pool)
    stats.near = near
    drop = near.dropped_ids()
    if drop:
        make = lambda split, folder: ShardWriter(folder, args.source, split, tok.token_dtype,  # noqa: E731
                                                 with_image, kind=kind)
        shard_files = rewrite_without(shard_files, drop, make, with_image)
        stats.near_dropped = [Rejected(r["row_id"], "text", f"near-duplicate of {r['cluster']} (kept; Jaccard "
                                       f"{r['jaccard']:.3f} with {r['duplicate_of']})") for r in near.records()]
        for split in {s.split for s in shard_files}:
            mine = [s for s in shard_files if s.split == split]
            stats.rows[split] = sum(s.rows for s in mine)
            stats.tokens[split] = sum(s.tokens_total for s in mine)
            stats.lengths[split] = [np.asarray(open_sidecars(s.parquet)[1][:, 2]) for s in mine]
    if shard_files:
        save_signatures(shard_files[0].parquet.parent, near.config, *near.kept(shard_files))
    return shard_files


def _relocate_hits(decontam, shard_files) -> None:
    """Flagged decontamination hits name the shard their row is in after near-dedup ``drop`` wrote
    its split again (rows move to other files when rows before them are dropped); a dropped
    row's hit keeps the shard it would have been written to."""
    import dataclasses

    import pyarrow.parquet as pq

    wanted = {h.row_id for h in decontam.hits}
    where: dict[str, str] = {}
    for sf in shard_files:
        ids = pq.read_table(sf.parquet, columns=["id"]).column("id").to_pylist()
        where.update((i, sf.parquet.name) for i in ids if i in wanted)
    prefix = f"{decontam.shard_dir}/" if decontam.shard_dir else ""
    decontam.hits[:] = [dataclasses.replace(h, shard=prefix + where[h.row_id]) if h.row_id in where else h
                        for h in decontam.hits]


def _timed(items: Iterable, clock, name: str) -> Iterator:
    """``items``, with the time spent producing each one added to phase ``name``."""
    it = iter(items)
    while True:
        t0, c0 = time.perf_counter(), time.thread_time()
        try:
            item = next(it)
        except StopIteration:
            clock.add(name, time.perf_counter() - t0, cpu=time.thread_time() - c0)
            return
        clock.add(name, time.perf_counter() - t0, cpu=time.thread_time() - c0)
        yield item


def _progress(args):
    from corpus.progress import progress

    return progress(not args.quiet)


def _write_quarantine(path: Path, rejected) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from corpus.atomic import atomic_path

    table = pa.table({
        "ref": [r.ref for r in rejected],
        "field": [r.field for r in rejected],
        "reason": [r.reason for r in rejected],
    })
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def _register(catalog, root, args, source, vid, fingerprint, config, tok, final_dir, shard_files, stats,
              rejected, q_path, seconds) -> None:
    """One transaction: the version (status ``validating``), its shards, files, tiers, quarantine."""
    from corpus.atomic import sha256_file, xxh3_file
    from corpus.versioning import code_version

    rel = lambda p: str(Path(p).relative_to(root))  # noqa: E731
    now = datetime.now(timezone.utc)
    tier_tokens: Counter = Counter()
    tier_rows: Counter = Counter()
    for s in shard_files:
        for tier, (rows, tokens) in s.tier_counts.items():
            tier_rows[(s.split, tier)] += rows
            tier_tokens[(s.split, tier)] += tokens
    kind = "eval" if source.is_eval_split(args.split) else source.role  # e.g. mbpp --split test
    # the length bound the quality suite checks: the window length, or the longest whole example
    length_bound = args.max_seq_len if source.windows else max(1, stats.longest())
    with catalog.connect() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'validating', ?, ?, ?, ?)",
                [vid, args.source, kind, now, json.dumps(config), fingerprint, tok.sha256, code_version(args.source_cls),
                 source.tier_rule.id, length_bound, sum(stats.rows.values()), sum(stats.tokens.values()),
                 len(rejected), seconds],
            )
            for s in sorted(shard_files, key=lambda s: (s.split, s.idx)):
                final = {name: final_dir / name for name in s.sha256}
                parquet = final_dir / s.parquet.name
                con.execute("INSERT INTO shards VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            [vid, s.split, s.idx, rel(parquet), s.sha256[s.parquet.name], s.bytes[s.parquet.name],
                             s.rows, s.tokens_total, s.min_len, s.max_len])
                for name, path in final.items():
                    role = "parquet" if name.endswith(".parquet") else name.split(".")[-2]
                    con.execute("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?)",
                                [rel(path), vid, role, s.sha256[name], s.bytes[name]])
                    con.execute("INSERT OR REPLACE INTO file_checksums VALUES (?, ?)",
                                [rel(path), s.xxh3.get(name) or xxh3_file(path)])
            for (split, tier), rows in sorted(tier_rows.items()):
                con.execute("INSERT INTO tiers (version, split, tier, rows, tokens, rule) VALUES (?, ?, ?, ?, ?, ?)",
                            [vid, split, tier, rows, tier_tokens[(split, tier)], source.tier_rule.id])
            for name, value in sorted(stats.counters.items()):
                con.execute("INSERT INTO version_counters VALUES (?, ?, ?)", [vid, name, value])
            if rejected:
                con.executemany("INSERT INTO quarantine VALUES (?, ?, ?, ?, ?)",
                                [[vid, args.source, r.ref, r.field, r.reason] for r in rejected])
                con.execute("INSERT OR REPLACE INTO files VALUES (?, ?, 'quarantine', ?, ?)",
                            [rel(q_path), vid, sha256_file(q_path), q_path.stat().st_size])
            con.execute("COMMIT")
        except Exception:
            from corpus.catalog import rollback

            rollback(con)  # never masks the real error (DuckDB may have rolled back already)
            raise


def _forget(catalog, vid: str) -> None:
    with catalog.connect() as con:
        for table, column in (("versions", "id"), ("shards", "version"), ("files", "version"), ("tiers", "version"),
                              ("quarantine", "version"), ("validations", "version"), ("tier_files", "version"),
                              ("version_counters", "version"), ("decontamination", "version"),
                              ("row_hashes", "version"), ("duplicates", "version"),
                              ("near_duplicates", "version"), ("near_dedup_runs", "version")):
            if table == "files":
                con.execute("DELETE FROM file_checksums WHERE path IN (SELECT path FROM files WHERE version = ?)", [vid])
            con.execute(f"DELETE FROM {table} WHERE {column} = ?", [vid])


def _print_summary(args, source, vid, stats: BuildStats, rejected, status, failures, seconds, clock=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    total_tokens = sum(stats.tokens.values())
    table = Table(title=f"{args.source} → {vid}", show_edge=False)
    for col in ("split", "rows", "tokens", "p50", "p95", "p99", "max", "tiers (rows)"):
        table.add_column(col, justify="right" if col != "split" else "left")
    for split in sorted(stats.rows):
        tiers = " ".join(f"t{t}:{n}" for (s, t), n in sorted(stats.tiers.items()) if s == split)
        pct = stats.length_percentiles(split)
        table.add_row(split, f"{stats.rows[split]:,}", f"{stats.tokens[split]:,}",
                      *(f"{pct[k]:,}" if k in pct else "-" for k in ("p50", "p95", "p99", "max")), tiers)
    console.print(table)
    console.print("tokens per row: p50/p95/p99/max above; " + (
        f"document windows of --max-seq-len {args.max_seq_len}" if source.windows else
        "examples stored whole: the mix manifest's max_seq_len and overlong policy decide at read time"))
    reasons = Counter(re.sub(r"\d+", "N", r.reason.split(":")[0]) for r in rejected)
    q = ", ".join(f"{reason}: {n}" for reason, n in reasons.most_common()) or "none"
    console.print(f"quarantined {len(rejected)} of {stats.records} records ({q})")
    if stats.counters:
        counted = {name: n for name, n in stats.counters.items() if name != "not decontaminated"}  # printed below
        if counted:
            console.print("counted: " + ", ".join(f"{name}: {n}" for name, n in sorted(counted.items())))
    console.print(f"{seconds:.1f} s, {total_tokens / max(seconds, 1e-9):,.0f} tokens/s"
                  + (f" (phases: {clock.line()})" if clock is not None else ""))
    console.print(f"version {vid}: {status}" + (f" — failing: {'; '.join(failures)}" if failures else ""))


def main(argv: list[str] | None = None) -> int:
    from corpus.cli import run_cli

    argv = sys.argv[1:] if argv is None else argv

    def body() -> int:
        return build(request_from_argv(argv))

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
