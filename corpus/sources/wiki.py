"""Wikipedia-style plain text: articles cut into windows of ``--max-seq-len`` tokens.

Inputs: ``.txt`` (WikiText-style files split into articles at `` = Title = `` lines; other text
files split at blank-line paragraphs), or JSON Lines / Parquet with ``--text-field``. Windows
overlap by ``--stride`` tokens (the blueprint chunked at 1024 with stride 64; stride 0 covers
every token exactly once). Difficulty features are measured per window (words per sentence,
word length); the tier rule reads words per sentence.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

from corpus.loading import Unreadable, expand_paths, file_format, file_records
from corpus.sources.base import Example, RawRecord, Source, threshold_rule
from corpus.sources.fields import native_id, optional, require

TITLE = re.compile(r"^ ?= (?!=)(.+?) = ?$")


class Wiki(Source):
    name = "wiki"
    hub_id = "wikimedia/wikipedia"
    hub_config = "20231101.en"
    requires_target = False
    windows = True
    tier_rule = threshold_rule("wiki-sentence-length", 1, "words_per_sentence", [18, 25, 35],
                               "tier by mean words per sentence of the window: <18, <25, <35, ≥35")

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--stride", type=int, default=0, help="tokens of overlap between windows")
        parser.add_argument("--prompt-ratio", type=float, default=0.5,
                            help="share of each window recorded as prompt (the rest is target)")
        parser.add_argument("--text-field", default="text", help="text field of JSON/Parquet articles")
        parser.add_argument("--title-field", default="title")
        parser.add_argument("--id-field", default=None)

    def options(self) -> dict:
        a = self.args
        if a.stride < 0 or a.stride >= a.max_seq_len:
            from corpus.errors import UserError

            raise UserError(f"--stride {a.stride} must be in [0, --max-seq-len {a.max_seq_len})")
        return {"stride": a.stride, "prompt_ratio": a.prompt_ratio, "text_field": a.text_field}

    def records(self, paths, split, limit) -> Iterator[RawRecord]:
        if paths is None:
            yield from super().records(paths, split, limit)
            return
        for path in expand_paths(paths):
            if file_format(path) == "text":
                yield from _text_articles(path)
            else:
                yield from file_records(path)

    def normalize(self, record: RawRecord) -> Example:
        a = self.args
        text = require(record.data, a.text_field)
        title = optional(record.data, a.title_field, "")
        return Example(
            native_id=native_id(record.data, a.id_field, record.ref) if a.id_field else _ref_id(record.ref),
            prompt=text,
            meta={"title": title, "ref": record.ref},
            document=True,
        )


def _ref_id(ref: str) -> str:
    return ref.replace("/", "_")


def _text_articles(path: Path) -> Iterator[RawRecord]:
    """Group text lines into articles (WikiText titles) or paragraphs; refs are ``file:line``."""
    from corpus.loading import iter_text_records

    lines = list(iter_text_records(path))
    wikitext = any(isinstance(r.data, dict) and TITLE.match(r.data["text"].rstrip("\n")) for r in lines[:200])
    article: list[str] = []
    title, start = "", 1
    for lineno, rec in enumerate(lines, start=1):
        if isinstance(rec.data, Unreadable):
            yield rec
            continue
        line = rec.data["text"]
        stripped = line.strip()
        boundary = TITLE.match(line.rstrip("\n")) if wikitext else (not stripped)
        if boundary and "".join(article).strip():
            yield RawRecord(f"{path.name}:{start}", {"text": _trim("".join(article)), "title": title})
            article = []
        if boundary or not article:
            start = lineno
            if wikitext and boundary:
                title = boundary.group(1)
        if stripped or article:
            article.append(line)
    if "".join(article).strip():
        yield RawRecord(f"{path.name}:{start}", {"text": _trim("".join(article)), "title": title})


def _trim(text: str) -> str:
    """Drop trailing blank lines, so no window is whitespace only."""
    return text.rstrip()
