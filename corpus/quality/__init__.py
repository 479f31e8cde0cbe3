"""Data quality: nothing reaches training that has not passed its suite (docs/quality.md).

    build ─► rows ─► decontaminate (eval n-grams: drop | flag) ─► shards ─► register (validating)
                                                                              │
    publish ◄── suites (GX) over a per-row *facts* frame of every shard ◄─────┘
       │          (ids, lengths, min/max token id, tier, split, image, text hash)
       ├─► validations, row_hashes, duplicates (catalog)
       └─► status published | failed  ──►  require_published() gates mixer and trainer

Modules, one job each: ``text`` (normalization, hashes, word n-grams), ``facts`` (the frame),
``suites`` (expectations per source kind), ``gx`` (running Great Expectations), ``validate``
(a version's suites → catalog), ``decontaminate`` (eval index + build filter), ``dedup``
(exact duplicates), ``report`` (Data Docs + markdown), ``ci`` (sample corpus for CI).
Great Expectations, polars and pandas are imported lazily so ``--help`` stays fast.
"""
