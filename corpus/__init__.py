"""hrm-corpus: versioned, validated, mixable token corpora for a staged reasoning curriculum.

    raw source ─► normalize ─► tier ─► tokenize ─► Parquet shards + memmap sidecars
                     │                                   │
                     └─► quarantine (reason)             ▼
                                             expectation suites ─► DuckDB catalog
                                                                        │
                                   mix manifest ─► deterministic plan ◄─┘ ─► trainer

The Python API (``corpus.api``, re-exported here; the CLIs run the same code; the verbs are
named so they never shadow the CLI modules ``corpus.build``, ``corpus.sql``, ``corpus.verify``):

    import corpus
    v = corpus.build_source("gsm8k", "train.jsonl", tokenizer="tok.json")   # -> corpus.Version
    corpus.query("SELECT * FROM versions")                                   # -> polars DataFrame
    plan = corpus.plan("manifests/demo.toml"); next(corpus.batches(plan))

See docs/design.md for the contracts (on-disk layout, catalog tables, shard rows).
"""

__version__ = "0.1.0"

_API = ("CorpusError", "Version", "train_tokenizer", "build_source", "version", "versions", "query", "retier_version", "verify_files",
        "plan", "open_plan", "batches", "decode")
__all__ = list(_API)


def __getattr__(name: str):
    """The API loads on first use, so ``import corpus`` (and every CLI's ``--help``) stays light."""
    if name in _API:
        from corpus import api

        return getattr(api, name)
    raise AttributeError(f"module 'corpus' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The API's verbs too (they load lazily), so a notebook's tab completion shows them."""
    return sorted(set(globals()) | set(_API))
