"""No test set in training by accident.

Three checks, all cheap and all one line:

* :func:`refuse_eval_inputs` (``corpus.build``, training builds only): an input named as a test
  split (``gsm8k/test.jsonl``, ``test-00000-of-00001.parquet``) of a benchmark source, or input
  files already registered as an evaluation version (same files; for the same source, the same
  split), is refused with how to build it as evaluation data, unless ``--allow-eval-data``.
* :func:`not_decontaminated` (build summary, quality report): a training build of a benchmark
  source while no evaluation set of that benchmark is registered, so nothing was checked.
* :func:`train_eval_overlaps` (``corpus.quality check``): rows of a published training version
  whose normalized text (``row_hashes``) is a row of an evaluation version.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from corpus.errors import UserError

ALLOW_FLAG = "--allow-eval-data"
NOT_DECONTAMINATED = "not decontaminated"  # the version_counters name the report reads
_TEST_NAME = re.compile(r"(^|[^a-z0-9])test([^a-z]|$)")


def add_arguments(parser) -> None:
    parser.add_argument(ALLOW_FLAG, dest="allow_eval_data", action="store_true",
                        help="train on an input that is (or is named as) a benchmark's evaluation split, on purpose")


def named_as_test_split(path: Path) -> bool:
    """``test.jsonl``, ``gsm8k_test.jsonl``, ``test-00000-of-00001.parquet``; not ``latest.txt``."""
    return bool(_TEST_NAME.search(path.name.lower()))


def refuse_eval_inputs(args, source, files: list[Path] | None, fingerprint: str, catalog) -> None:
    """Raise a one-line UserError when a training build reads evaluation data (see module doc)."""
    if getattr(args, "allow_eval_data", False) or not files:
        return
    how = (f"build it as evaluation data (python -m corpus.build {args.source} --split test ...)"
           if source.benchmark else f"build it as evaluation data with --role eval")
    if source.benchmark:
        named = [f for f in files if named_as_test_split(f)]
        if named:
            raise UserError(f"{named[0]} is named as a test split: a training build of {args.source} must not read "
                            f"a benchmark's evaluation data; {how}, or pass {ALLOW_FLAG} if this is intended")
    if not catalog.path.exists():
        return
    for v in catalog.query_dicts("SELECT id, source, config FROM versions WHERE kind = 'eval' AND input_fingerprint = ?",
                                 [fingerprint]):
        config = json.loads(v["config"]) if isinstance(v["config"], str) else (v["config"] or {})
        if v["source"] != args.source or config.get("split") == args.split:
            raise UserError(f"{', '.join(map(str, files))} is registered as evaluation data ({v['source']} {v['id']}): "
                            f"{how}, or pass {ALLOW_FLAG} if training on it is intended")


def not_decontaminated(source, kind: str, decontam) -> str | None:
    """Why this training build of a benchmark was not checked against its own evaluation set, or None."""
    if kind == "eval" or not source.benchmark:
        return None
    against = {src for _, src in decontam.index.versions} if decontam else set()
    if source.name in against:
        return None
    why = "--decontaminate off" if decontam is None else f"no evaluation set of {source.name} is registered"
    return f"{NOT_DECONTAMINATED}: {why} (build its evaluation split first, e.g. --split test)"


def train_eval_overlaps(catalog, versions: list[dict]) -> list[str]:
    """One line per (training version, evaluation version) pair that share row contents."""
    ids = [v["id"] for v in versions if v["status"] == "published" and (v["kind"] or "train") != "eval"]
    if not ids or not catalog.path.exists():
        return []
    marks = ", ".join("?" * len(ids))
    rows = catalog.query(
        f"""SELECT t.version, tv.source, e.version, ev.source, count(DISTINCT t.row_id), min(t.row_id), min(e.row_id)
        FROM row_hashes t JOIN versions tv ON tv.id = t.version
        JOIN row_hashes e ON e.text_hash = t.text_hash JOIN versions ev ON ev.id = e.version AND ev.kind = 'eval'
        WHERE t.version IN ({marks}) GROUP BY ALL ORDER BY 1, 3""", ids)
    return [f"{ts} {tv} (training) and {es} {ev} (evaluation) share {n:,} rows (e.g. {tr} = {er}): the same "
            f"content is registered as training and as evaluation data" for tv, ts, ev, es, n, tr, er in rows]
