"""Normalized examples → tokenized rows (a :class:`~corpus.shards.RowBatch` per split).

Question/answer examples become ``[bos] + prompt`` and ``target + [eos]``, stored whole whatever
their length: the run's ``max_seq_len`` and the mix manifest's ``overlong`` policy decide what a
long row becomes (corpus.mixing.overlong), so one build serves every context length. Documents
(plain text) are tokenized whole and cut into windows of ``max_seq_len`` tokens that overlap by
``stride``; each window is split into prompt and target at ``prompt_ratio`` of its length and
the texts are sliced from the original by token offsets, so ids and text always agree.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from corpus.shards import RowBatch
from corpus.sources.base import Example
from corpus.tokenizer import TokenizerInfo


@dataclass(frozen=True)
class RowOptions:
    source: str
    max_seq_len: int
    val_ratio: float
    seed: int
    stride: int = 0
    prompt_ratio: float = 0.5


@dataclass
class Rejected:
    ref: str
    field: str | None
    reason: str


@dataclass
class _Rows:
    ids: list[str] = field(default_factory=list)
    tiers: list[int] = field(default_factory=list)
    seqs: list[np.ndarray] = field(default_factory=list)  # prompt then target ids of each row
    prompt_lens: list[int] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)
    metas: list[str] = field(default_factory=list)
    images: list = field(default_factory=list)
    widths: list = field(default_factory=list)
    heights: list = field(default_factory=list)

    def add(self, row_id, tier, seq, prompt_len, prompt, target, features, meta, ex: Example):
        self.ids.append(row_id)
        self.tiers.append(tier)
        self.seqs.append(seq)
        self.prompt_lens.append(prompt_len)
        self.prompts.append(prompt)
        self.targets.append(target)
        self.features.append(json.dumps(features, sort_keys=True))
        self.metas.append(json.dumps(meta, sort_keys=True, ensure_ascii=False))
        self.images.append(ex.image)
        self.widths.append(ex.image_width)
        self.heights.append(ex.image_height)

    def batch(self, index: list[int]) -> RowBatch:
        pick = lambda xs: [xs[i] for i in index]  # noqa: E731
        seqs = pick(self.seqs)
        tokens = np.concatenate(seqs).astype(np.int32, copy=False) if seqs else np.zeros(0, np.int32)
        lengths = np.fromiter((len(a) for a in seqs), dtype=np.int64, count=len(seqs))
        prompt_lens = np.asarray(pick(self.prompt_lens), dtype=np.int64)
        return RowBatch(
            ids=pick(self.ids), tiers=np.asarray(pick(self.tiers), dtype=np.int8),
            tokens=tokens, prompt_lens=prompt_lens, target_lens=lengths - prompt_lens,
            prompts=pick(self.prompts), targets=pick(self.targets),
            features=pick(self.features), metas=pick(self.metas),
            images=pick(self.images), image_widths=pick(self.widths), image_heights=pick(self.heights),
        )


def is_val(example_id: str, seed: int, val_ratio: float) -> bool:
    """Deterministic split by a hash of the id: adding examples never moves an existing one."""
    if val_ratio <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{example_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < val_ratio


@dataclass
class Encoded:
    """The tokenizer's output for one batch of items: the GIL-free part of tokenizing, kept apart
    so a builder can encode the next batch while it turns this one into rows."""

    prompts: list
    targets: dict
    docs: list
    doc_offsets: bool = True  # False: documents were encoded without character offsets


def encode_items(items: list[tuple[str, Example]], tok: TokenizerInfo) -> Encoded:
    """Encode prompts, targets and documents in three batches.

    Ids are all a row needs, and a byte-level BPE's window cuts come from its tokens' byte
    lengths, so these go through ``encode_batch_fast``, which skips tracking character offsets
    (the same ids at a fraction of the CPU: BENCHMARKS.md). Documents of any other tokenizer
    need offsets to cut their text, and get ``encode_batch``."""
    tokenizer = tok.tokenizer
    has_fast = hasattr(tokenizer, "encode_batch_fast")
    fast = tokenizer.encode_batch_fast if has_fast else tokenizer.encode_batch
    pairs = [ex for _, ex in items if not ex.document]
    targets_idx = [i for i, ex in enumerate(pairs) if ex.target]
    prompts = fast([ex.prompt for ex in pairs], add_special_tokens=False) if pairs else []
    target_enc = fast([pairs[i].target for i in targets_idx], add_special_tokens=False) if targets_idx else []
    docs = [ex.prompt for _, ex in items if ex.document]
    with_offsets = tok.token_nbytes is None
    doc_enc = (tokenizer.encode_batch if with_offsets else fast)(docs, add_special_tokens=False) if docs else []
    return Encoded(prompts, dict(zip(targets_idx, target_enc)), doc_enc, doc_offsets=with_offsets or not has_fast)


def tokenize_examples(
    items: list[tuple[str, Example]],
    tok: TokenizerInfo,
    opts: RowOptions,
    tier_of: Callable[[Mapping[str, float | int]], int],
    encoded: Encoded | None = None,
) -> dict[str, RowBatch]:
    """Tokenize ``(ref, example)`` pairs into row batches keyed by split (nothing is rejected here:
    a record's problems are found when it is normalized)."""
    encoded = encoded if encoded is not None else encode_items(items, tok)
    rows = _Rows()
    split_of: list[str] = []
    docs = [(ref, ex) for ref, ex in items if ex.document]
    pairs = [(ref, ex) for ref, ex in items if not ex.document]
    if pairs:
        _tokenize_pairs(pairs, encoded, tok, opts, tier_of, rows, split_of)
    if docs:
        _tokenize_documents(docs, encoded.docs, tok, opts, tier_of, rows, split_of, encoded.doc_offsets)
    out: dict[str, RowBatch] = {}
    for split in ("train", "val"):
        index = [i for i, s in enumerate(split_of) if s == split]
        if index:
            out[split] = rows.batch(index)
    return out


def _tokenize_pairs(pairs, encoded: Encoded, tok, opts, tier_of, rows, split_of) -> None:
    prompts, targets = encoded.prompts, encoded.targets
    bos = np.asarray([tok.bos_id], dtype=np.int32)
    eos = np.asarray([tok.eos_id], dtype=np.int32)
    empty = np.zeros(0, dtype=np.int32)
    for i, (ref, ex) in enumerate(pairs):
        row_id = f"{opts.source}:{ex.native_id}"
        p_ids = np.asarray(prompts[i].ids, dtype=np.int32)
        t_ids = np.asarray(targets[i].ids, dtype=np.int32) if i in targets else None
        seq = np.concatenate([bos, p_ids, t_ids, eos] if t_ids is not None else [bos, p_ids, empty])
        features = dict(ex.features)
        features.setdefault("tokens", int(len(seq)))
        rows.add(row_id, tier_of(features), seq, 1 + len(p_ids), ex.prompt, ex.target, features, dict(ex.meta), ex)
        split_of.append("val" if is_val(row_id, opts.seed, opts.val_ratio) else "train")


def _tokenize_documents(docs, encodings, tok, opts, tier_of, rows, split_of, have_offsets: bool = True) -> None:
    window = opts.max_seq_len
    nbytes = tok.token_nbytes
    for (ref, ex), enc in zip(docs, encodings):
        ids = np.asarray(enc.ids, dtype=np.int32)
        n = len(ids)
        if n == 0:
            continue
        text = ex.prompt
        data = text.encode("utf-8")
        ends = np.cumsum(nbytes[ids]) if nbytes is not None else None
        byte_level = ends is not None and ends[-1] == len(data)
        if not byte_level and not have_offsets:  # token bytes do not add up to the text: cut by offsets
            enc = tok.tokenizer.encode(text, add_special_tokens=False)
        if byte_level:
            # byte-level tokens: boundaries from byte lengths; a token starting on a UTF-8
            # continuation byte begins inside a character
            starts = ends - nbytes[ids]
            unsafe = (np.frombuffer(data, dtype=np.uint8)[np.minimum(starts, len(data) - 1)] & 0xC0) == 0x80
            piece = lambda lo, hi: data[lo:hi].decode("utf-8", errors="replace")  # noqa: E731
            total = len(data)
        else:
            offsets = np.asarray(enc.offsets, dtype=np.int64)
            starts = offsets[:, 0]
            unsafe = np.zeros(n, dtype=bool)
            unsafe[1:] = starts[1:] < offsets[:-1, 1]
            piece = lambda lo, hi: text[lo:hi]  # noqa: E731
            total = len(text)
        doc_id = f"{opts.source}:{ex.native_id}"
        split = "val" if is_val(doc_id, opts.seed, opts.val_ratio) else "train"
        cuts = _windows(n, window, opts.stride, opts.prompt_ratio, unsafe)
        char = lambda t: int(starts[t]) if t < n else total  # noqa: E731
        spans = [(0 if start == 0 else char(start), char(cut), char(end)) for start, cut, end in cuts]
        for k, ((start, cut, end), (lo, mid, hi)) in enumerate(zip(cuts, spans)):
            prompt, target = piece(lo, mid), piece(mid, hi)
            features = dict(ex.features)
            features.update(_text_features(prompt + target))
            features["tokens"] = int(end - start)
            meta = dict(ex.meta)
            meta.update({"window": k, "start_token": int(start), "doc_tokens": int(n)})
            rows.add(f"{doc_id}#w{k}", tier_of(features), ids[start:end], cut - start, prompt, target,
                     features, meta, ex)
            split_of.append(split)


def _windows(n: int, window: int, stride: int, prompt_ratio: float, unsafe: np.ndarray) -> list[tuple[int, int, int]]:
    """``(start, cut, end)`` token positions of each window of a document of ``n`` tokens:
    ``window`` long, overlapping by ``stride``, the prompt/target cut at ``prompt_ratio``, and no
    position inside a character that byte-level BPE split over two tokens."""

    def safe(t: int, floor: int) -> int:
        while floor < t < n and unsafe[t]:
            t -= 1
        return t

    out = []
    start = 0
    while start < n:
        end = safe(min(start + window, n), start + 1)
        cut = safe(start + max(1, int((end - start) * prompt_ratio)), start + 1) if end - start > 1 else end
        out.append((start, cut, end))
        if end >= n:
            break
        start = safe(max(end - stride, start + 1), start + 1)
    return out


def _text_features(text: str) -> dict[str, float | int]:
    words = text.split()
    sentences = max(1, sum(text.count(c) for c in ".!?"))
    return {
        "chars": len(text),
        "words": len(words),
        "words_per_sentence": round(len(words) / sentences, 3),
        "mean_word_len": round(sum(map(len, words)) / max(1, len(words)), 3),
    }
