"""The CI sample corpus: every source available in ``../shared/data`` plus synthetic tasks.

Builds (each build publishes with the native engine), then re-hashes every registered file
(``corpus.verify``), re-validates every version with Great Expectations — the reference engine,
whose results the report then shows; a version GX judges otherwise than the build did fails CI
— then reports.

Eval sets are built first (GSM8K test with ``--role eval``, MBPP test, HumanEval, ScienceQA
test) so every training build after them is decontaminated against them. A source whose input
is absent, or whose module does not exist yet, is skipped with a note; a build that fails is a
CI failure.
"""

from __future__ import annotations

import io
import json
import sys
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path

SYNTHETIC_COUNT = 400
SYNTHETIC_TASKS: int | None = None  # build every synthetic task (a number keeps the first N)
MAX_SEQ_LEN = 2048  # ScienceQA lectures run past 1,000 tokens with a 4k vocab
VOCAB_SIZE = 4096


@dataclass(frozen=True)
class Step:
    """One build: source, the shared input (relative to ``--shared``; None = generated), flags."""

    source: str
    input: str | None
    flags: tuple[str, ...] = ()


EVAL_STEPS = [
    Step("gsm8k", "gsm8k/test.jsonl", ("--split", "test", "--role", "eval")),
    Step("mbpp", "mbpp/mbpp.jsonl", ("--split", "test")),
    Step("humaneval", "humaneval/HumanEval.jsonl.gz", ("--split", "test")),
    Step("science_qa", "scienceqa", ("--split", "test")),
]
TRAIN_STEPS = [
    Step("mbpp", "mbpp/mbpp.jsonl", ("--split", "train")),
    Step("science_qa", "scienceqa", ("--split", "train")),
    Step("wiki", "wikitext2/valid.txt"),
]
TOKENIZER_TEXTS = ["gsm8k/test.jsonl", "wikitext2/valid.txt", "mbpp/mbpp.jsonl"]


def plan(shared: Path) -> tuple[list[tuple[Step, list[str]]], list[str]]:
    """The builds to run (step, argv) and the notes for those skipped."""
    from corpus.errors import UserError
    from corpus.sources import get_source, source_names

    steps, notes = [], []
    synthetic = [Step(name, None, ("--count", str(SYNTHETIC_COUNT))) for name in source_names()
                 if name.startswith("synthetic:")][:SYNTHETIC_TASKS]
    if not synthetic:
        notes.append("synthetic: no synthetic sources registered (corpus/sources/synthetic.py absent)")
    for step in EVAL_STEPS + TRAIN_STEPS + synthetic:
        try:
            get_source(step.source)
        except UserError:
            notes.append(f"{step.source}: source not available in this checkout")
            continue
        argv = [step.source, *step.flags]
        if step.input is not None:
            path = shared / step.input
            if not path.exists():
                notes.append(f"{step.source} {' '.join(step.flags)}: {path} absent")
                continue
            argv += ["--from", str(path)]
        steps.append((step, argv))
    return steps, notes


def train_ci_tokenizer(shared: Path, out: Path) -> Path:
    """A byte-level BPE over the shared texts and synthetic examples (seconds)."""
    from corpus.tokenizer import synthetic_texts, texts_from_file, train_tokenizer

    def texts():
        for rel in TOKENIZER_TEXTS:
            if (shared / rel).is_file():
                yield from texts_from_file(shared / rel, None)
        try:
            yield from synthetic_texts(2000, 0)
        except Exception:  # synthetic generators absent: shared text is enough
            return

    tok = train_tokenizer(texts(), VOCAB_SIZE)
    out.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(out))
    return out


def run_ci(shared: Path, out: Path, data_dir: Path, echo=print) -> int:
    """Build the sample corpus into ``data_dir``, write the report to ``out``, print the summary."""
    from corpus.build import main as build_main
    from corpus.catalog import Catalog
    from corpus.quality.report import write_report

    shared, out, data_dir = Path(shared), Path(out), Path(data_dir)
    steps, notes = plan(shared)
    tokenizer = train_ci_tokenizer(shared, data_dir / "ci-tokenizer.json")
    build_failures = []
    for step, argv in steps:
        full = [*argv, "--tokenizer", str(tokenizer), "--data-dir", str(data_dir), "--max-seq-len", str(MAX_SEQ_LEN),
                "--quiet"]
        buffer = io.StringIO()
        with redirect_stdout(buffer):
            code = build_main(full)
        last = [line.split(" — ")[0] for line in buffer.getvalue().splitlines()
                if line.startswith(("version ", "decontamination"))]
        echo(f"build {' '.join(argv[:3])}: exit {code}" + (f" — {'; '.join(last)}" if last else ""))
        if code != 0:
            build_failures.append(f"{' '.join(argv)} (exit {code})")
    from corpus.verify import verify

    checked, problems = verify(data_dir)  # every registered file re-hashed: what the report covers is intact
    echo(f"verify: {checked - len(problems)} of {checked} registered files match the catalog")
    build_failures += [f"verify: {why}" for why in problems]
    build_failures += revalidate_with_gx(Catalog(data_dir), data_dir, echo)
    report = write_report(Catalog(data_dir), data_dir, out)
    markdown = report.markdown
    extra = []
    if notes:
        extra += ["", "## Skipped in this run", ""] + [f"- {n}" for n in notes]
    if build_failures:
        extra += ["", "## Builds that failed", ""] + [f"- {b}" for b in build_failures]
    if extra:
        markdown += "\n".join(extra) + "\n"
        report.summary.write_text(markdown)
    echo(markdown)
    echo(f"Data Docs: {report.docs_index}")
    (out / "ci.json").write_text(json.dumps({"success": report.success and not build_failures,
                                             "skipped": notes, "build_failures": build_failures}, indent=1))
    return 0 if report.success and not build_failures else 1


def revalidate_with_gx(catalog, root: Path, echo=print) -> list[str]:
    """Every built version validated again by GX (status and results replaced); one line per
    version whose status differs from what the build's native engine decided."""
    from corpus.publish import publish

    versions = catalog.query_dicts("SELECT id, source, status FROM versions WHERE status IN ('published', 'failed') "
                                   "ORDER BY source, created_at, id")
    disagree = []
    for v in versions:
        status, _ = publish(catalog, root, v["id"], engine="gx")
        if status != v["status"]:
            disagree.append(f"{v['source']} {v['id']}: the build's native engine decided {v['status']}, "
                            f"great-expectations decides {status}")
    echo(f"re-validated with great-expectations: {len(versions) - len(disagree)} of {len(versions)} versions "
         "judged as the build judged them")
    return disagree


if __name__ == "__main__":  # pragma: no cover - use python -m corpus.quality ci
    sys.exit("use: python -m corpus.quality ci --shared DIR --out DIR")
