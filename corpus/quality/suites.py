"""Expectation suites, one per kind of source, filled with each version's limits from the catalog.

Every shard gets two suites: ``shard.schema`` (the Parquet columns and types) and
``<kind>.rows`` over its facts frame (:mod:`corpus.quality.facts`); each version gets
``version.rows`` over the ids, splits and hashes of all its shards. Kinds differ only where the
data does: ``text`` (windowed documents: targets may be empty, ids end in ``#wK``), ``image``
(images decode to their declared, sane size), ``qa``/``code``/``synthetic`` (a non-empty
target is required). docs/quality.md lists every expectation and why it exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from corpus.quality.spec import Expectation, expect

KIND_BY_SOURCE = {"gsm8k": "qa", "mbpp": "code", "humaneval": "code", "science_qa": "image", "wiki": "text"}
KINDS = ("qa", "code", "text", "image", "synthetic")
# Highest share of rows whose normalized text (plus image) repeats another row's. Generated tasks
# repeat easy items by construction (few distinct small problems), so they get more room.
MAX_DUP_RATE = {"qa": 0.01, "code": 0.01, "text": 0.01, "image": 0.05, "synthetic": 0.05}
IMAGE_SIDE = (8, 8192)  # pixels: smaller or larger is a broken image, not a picture


@dataclass(frozen=True)
class Limits:
    """The numbers a suite checks against, read from the catalog for one version."""

    source: str
    vocab_size: int
    max_seq_len: int  # versions.max_seq_len: the window length (text), else the longest row built
    max_tier: int
    rows: int
    max_dup_rate: float
    dup_severity: str = "critical"  # "warning" for generated tasks unless --max-dup-rate was given
    splits: tuple[str, ...] = ("train", "val")  # an evaluation version: its one split


def max_dup_rate(kind: str, config: dict | None) -> tuple[float, str]:
    """(rate, severity): the build's ``--max-dup-rate`` when given (kept in the version config) gates;
    else the kind's default, which gates every kind but ``synthetic``.

    Generators repeat easy items by construction (a tier-0 space is small: synthetic:derivations
    repeats 17% of 10,000 items), so for them the rate is reported as a warning unless a build
    asks for a bound.
    """
    given = ((config or {}).get("quality") or {}).get("max_dup_rate")
    if given is not None:
        return float(given), "critical"
    return MAX_DUP_RATE[kind], "warning" if kind == "synthetic" else "critical"


def suite_kind(source: str, config: dict | None) -> str:
    """Which suite a version gets: by source name, by options for generic files, else ``qa``."""
    if source.startswith("synthetic"):
        return "synthetic"
    if source in KIND_BY_SOURCE:
        return KIND_BY_SOURCE[source]
    options = (config or {}).get("options") or {}
    if source in ("jsonl", "parquet") or options.get("generic"):  # generic records, also under a --name
        return "qa" if options.get("target") else "text"
    return "qa"


def max_tier(source: str, rule_id: str | None) -> int:
    """Highest tier of the source's rule (0..127, the int8 column, when the source is unknown)."""
    from corpus.errors import UserError
    from corpus.sources import get_source

    try:
        rule = get_source(source).tier_rule
    except (UserError, AttributeError):
        return 127
    return rule.max_tier if rule_id in (None, rule.id) else 127


def schema_expectations(with_image: bool) -> list[Expectation]:
    from corpus.quality.facts import signature
    from corpus.shards import shard_schema

    expected = [signature(f) for f in shard_schema(with_image)]
    return [
        expect("expect_column_distinct_values_to_equal_set", "Parquet columns, types and nullability are the shard "
               "contract (docs/design.md)", column="signature", value_set=expected),
        expect("expect_column_values_to_be_unique", "no column appears twice", column="column"),
    ]


def rows_expectations(kind: str, limits: Limits) -> list[Expectation]:
    """The ``<kind>.rows`` suite for one version's shards."""
    if kind not in KINDS:
        raise ValueError(f"unknown suite kind {kind!r}")
    last_id = limits.vocab_size - 1
    between, in_set, pair_equal = ("expect_column_values_to_be_between", "expect_column_values_to_be_in_set",
                                   "expect_column_pair_values_to_be_equal")
    out = [
        expect("expect_column_values_to_not_be_null", "every row has an id", column="id"),
        expect("expect_column_values_to_be_unique", "ids are unique within the shard", column="id"),
        expect(in_set, "rows belong to the version's source", column="source", value_set=[limits.source]),
        expect(in_set, f"split is {' or '.join(limits.splits)}", column="split", value_set=list(limits.splits)),
        expect(between, f"tier within the rule's range 0..{limits.max_tier}", column="tier", min_value=0,
               max_value=limits.max_tier),
        expect(between, (f"1 <= n_tokens <= max_seq_len {limits.max_seq_len} (the window)" if kind == "text"
                         else f"1 <= n_tokens <= {limits.max_seq_len}, the longest whole example the build "
                         "registered"),
               column="n_tokens", min_value=1, max_value=limits.max_seq_len),
        expect(pair_equal, "n_tokens = len(prompt_ids) + len(target_ids)", column_A="n_tokens",
               column_B="token_count"),
        expect(between, f"every token id in [0, vocab_size {limits.vocab_size})", column="min_token", min_value=0,
               max_value=last_id),
        expect(between, f"every token id in [0, vocab_size {limits.vocab_size})", column="max_token", min_value=0,
               max_value=last_id),
        expect(between, "the prompt has tokens", column="prompt_len", min_value=1),
        expect(in_set, "sidecar offsets are contiguous", column="sidecar_offset_ok", value_set=[True]),
        expect(pair_equal, "the memory-map sidecars exist, align with the Parquet rows and agree on lengths",
               column_A="n_tokens", column_B="sidecar_n_tokens"),
        expect(pair_equal, "sidecar prompt lengths = Parquet prompt lengths", column_A="prompt_len",
               column_B="sidecar_prompt_len"),
        expect(pair_equal, "sidecar tokens sum to the Parquet tokens (same ids)", column_A="token_sum",
               column_B="sidecar_token_sum"),
        expect(between, f"every sidecar token id in [0, vocab_size {limits.vocab_size})", column="sidecar_max_token",
               min_value=0, max_value=last_id),
        expect(in_set, "features and meta are JSON objects", column="json_ok", value_set=[True]),
        expect("expect_column_proportion_of_unique_values_to_be_between",
               f"at most {limits.max_dup_rate:.0%} of rows repeat another row's normalized text",
               column="text_hash", min_value=1 - limits.max_dup_rate, severity=limits.dup_severity),
    ]
    if kind == "text":  # a window may cut anywhere, e.g. leave an article's trailing blank lines alone
        out += [
            expect(between, "the window holds more than whitespace", column="text_chars", min_value=1,
                   severity="warning"),
            expect("expect_column_values_to_match_regex", "document windows are named <doc>#w<k>", column="id",
                   regex=r"#w\d+$"),
        ]
    else:
        out.append(expect(between, "the prompt text is not empty", column="prompt_chars", min_value=1))
        # examples are stored whole (never cut at build time), so every row keeps its target
        out += [
            expect(between, "the target text is not empty", column="target_chars", min_value=1),
            expect(between, "the target has tokens", column="target_len", min_value=1),
        ]
    if kind == "image":
        lo, hi = IMAGE_SIDE
        out += [
            expect(in_set, "images decode to their declared size", column="image_status", value_set=["ok"]),
            expect(between, f"image width in [{lo}, {hi}] px", column="image_width", min_value=lo, max_value=hi),
            expect(between, f"image height in [{lo}, {hi}] px", column="image_height", min_value=lo, max_value=hi),
        ]
    return out


def version_expectations(limits: Limits) -> list[Expectation]:
    """The ``version.rows`` suite: facts that span shards."""
    return [
        expect("expect_table_row_count_to_equal", "the shards hold the rows the catalog registered",
               value=limits.rows),
        expect("expect_column_values_to_be_unique", "ids are unique across the whole version", column="id"),
        expect("expect_column_values_to_be_in_set", "train and val ids are disjoint", column="in_both_splits",
               value_set=[False]),
        expect("expect_column_pair_values_to_be_equal", "every row sits in a shard of its own split",
               column_A="split", column_B="shard_split"),
        expect("expect_column_proportion_of_unique_values_to_be_between",
               f"at most {limits.max_dup_rate:.0%} of the version's rows repeat another row's normalized text",
               column="text_hash", min_value=1 - limits.max_dup_rate, severity=limits.dup_severity),
    ]
