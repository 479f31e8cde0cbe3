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
    """Group text lines into articles (WikiText titles) or paragraphs; refs are ``file:line``.

    A WikiText file that is valid UTF-8 throughout is cut at its title lines with one regex
    scan per block (the same articles, ~10x faster than a line at a time); anything else (plain
    paragraphs, invalid bytes, pathological lines) goes line by line, so a bad line becomes an
    :class:`Unreadable` record with its line number.
    """
    if _clean_wikitext(path):
        yield from _wikitext_articles(path)
    else:
        yield from _line_articles(path)


BLOCK = 16 << 20
NEXT_TITLE = re.compile(r"\n ?= (?!=)(.+?) = ?$", re.M)  # a line break, then a TITLE line (a literal
# first character lets the regex engine skip ahead; ``^`` with re.M would try every position)
NON_SPACE = re.compile(r"\S")


def _blocks(path: Path) -> Iterator[bytes]:
    """The file in blocks of about ``BLOCK`` bytes, each ending at a line break (or the end)."""
    from corpus.loading import _open_bytes

    carry = b""
    with _open_bytes(path) as f:
        while chunk := f.read(BLOCK):
            chunk = carry + chunk
            cut = chunk.rfind(b"\n") + 1
            if cut == 0:
                carry = chunk
                continue
            carry = chunk[cut:]
            yield chunk[:cut]
    if carry:
        yield carry


def _clean_wikitext(path: Path) -> bool:
    """Valid UTF-8, no line over the record limit, and a title in the first 200 lines."""
    from corpus.loading import MAX_RECORD_BYTES

    since_break, first = 0, True
    wikitext = False
    for block in _blocks(path):
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            return False
        head = block.find(b"\n")
        if head < 0:
            since_break += len(block)
        else:
            if since_break + head + 1 > MAX_RECORD_BYTES:
                return False
            since_break = len(block) - block.rfind(b"\n") - 1
        if since_break > MAX_RECORD_BYTES or (len(block) > MAX_RECORD_BYTES and _longest_line(block) > MAX_RECORD_BYTES):
            return False
        if first:
            lines = text.split("\n", 200)[:200]
            wikitext = any(TITLE.match(line) for line in lines)
            first = False
            if not wikitext:
                return False
    return wikitext


def _longest_line(block: bytes) -> int:
    return max(map(len, block.split(b"\n")))


def _wikitext_articles(path: Path) -> Iterator[RawRecord]:
    """Articles of a clean WikiText file: each title line up to the next one, as
    :func:`_line_articles` cuts them (tests compare the two on WikiText-2)."""
    pending, line, title, titled = "", 1, "", False  # the open segment, its first line, its title
    for block in _blocks(path):
        text = pending + block.decode("utf-8")
        cur = 0
        if not pending and line == 1 and (m := TITLE.match(text[:text.find("\n") % (len(text) + 1)])):
            title, titled = m.group(1), True  # the file opens with a title
        # blocks end at line breaks, so a title in this block starts after len(pending)
        for m in NEXT_TITLE.finditer(text, max(0, len(pending) - 1)):
            start = m.start() + 1  # the title line, after its line break
            yield from _segment(path, text[cur:start], line, title, titled)
            line += text.count("\n", cur, start)
            cur, title, titled = start, m.group(1), True
        pending = text[cur:]
    yield from _segment(path, pending, line, title, titled)


def _segment(path: Path, text: str, line: int, title: str, titled: bool) -> Iterator[RawRecord]:
    """One article: a titled segment whole; the text before the first title from its first
    non-blank line."""
    if not titled:
        first = NON_SPACE.search(text)
        if first is None:
            return
        begin = text.rfind("\n", 0, first.start()) + 1
        line += text.count("\n", 0, begin)
        text = text[begin:]
    if text.strip():
        yield RawRecord(f"{path.name}:{line}", {"text": _trim(text), "title": title})


def _line_articles(path: Path) -> Iterator[RawRecord]:
    """Group text lines into articles (WikiText titles) or paragraphs, a line at a time."""
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
