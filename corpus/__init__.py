"""hrm-corpus: versioned, validated, mixable token corpora for a staged reasoning curriculum.

    raw source ─► normalize ─► tier ─► tokenize ─► Parquet shards + memmap sidecars
                     │                                   │
                     └─► quarantine (reason)             ▼
                                             expectation suites ─► DuckDB catalog
                                                                        │
                                   mix manifest ─► deterministic plan ◄─┘ ─► trainer

See docs/design.md for the contracts (on-disk layout, catalog tables, shard rows).
"""

__version__ = "0.1.0"
