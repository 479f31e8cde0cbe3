"""Generic JSON Lines / Parquet records with user-named fields.

``--prompt-field``, ``--target-field`` and ``--id-field`` take dotted paths with list indexes
(``data.answers.text[0]``), as the blueprint's QA normaliser allowed. Without a target field the
records are plain-text documents, windowed like ``wiki``.
"""

from __future__ import annotations

from corpus.sources.base import Example, RawRecord, Source, threshold_rule
from corpus.sources.fields import native_id, require


class JsonRecords(Source):
    name = "jsonl"
    tier_rule = threshold_rule("length-tokens", 1, "tokens", [128, 256, 384],
                               "tier by example length in tokens: <128, <256, <384, ≥384")

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--prompt-field", default="prompt", help="dotted path of the prompt (default: prompt)")
        parser.add_argument("--target-field", default=None, help="dotted path of the target (none: plain text)")
        parser.add_argument("--id-field", default=None, help="dotted path of a stable id (default: position)")
        parser.add_argument("--stride", type=int, default=0, help="window overlap for plain text")
        parser.add_argument("--prompt-ratio", type=float, default=0.5, help="prompt share of a text window")
        parser.add_argument("--name", help="register the records under this source name (e.g. squad) instead of "
                            f"{cls.name!r}; manifests then name it like any source")

    @property
    def requires_target(self) -> bool:  # type: ignore[override]
        return bool(self.args.target_field)

    def options(self) -> dict:
        a = self.args
        options = {"prompt": a.prompt_field, "target": a.target_field, "id": a.id_field, "stride": a.stride,
                   "prompt_ratio": a.prompt_ratio}
        if getattr(a, "name", None):  # the reader behind a user-named source, for the quality gate
            options["generic"] = self.name
        return options

    def normalize(self, record: RawRecord) -> Example:
        a = self.args
        prompt = require(record.data, a.prompt_field)
        target = require(record.data, a.target_field) if a.target_field else ""
        return Example(
            native_id=native_id(record.data, a.id_field, record.ref),
            prompt=prompt,
            target=target,
            meta={"ref": record.ref},
            document=not a.target_field,
        )


class ParquetRecords(JsonRecords):
    name = "parquet"
