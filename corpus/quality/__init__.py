"""Data quality: nothing reaches training that has not passed its suite (docs/quality.md).

    build ─► rows ─► decontaminate (eval n-grams: drop | flag) ─► shards ─► register (validating)
                                                                              │
    publish ◄── suites over a per-row *facts* frame of every shard ◄──────────┘
       │          (ids, lengths, min/max token id, tier, split, image, text hash);
       │          engine: native (numpy, the build) or gx (Great Expectations: check, CI)
       ├─► validations, row_hashes, duplicates (catalog)
       └─► status published | failed  ──►  require_published() gates mixer and trainer

Modules, one job each: ``text`` (normalization, hashes, word n-grams), ``frame`` (numpy
columns), ``facts`` (the frame of a shard), ``spec`` (one expectation as data), ``suites``
(expectations per source kind), ``native`` (the numpy engine), ``gx`` (the Great Expectations
engine), ``results`` (a suite's outcome, either engine), ``validate`` (a version's suites →
catalog), ``decontaminate`` (eval index + build filter), ``dedup`` (exact duplicates),
``minhash`` (shingles and signatures), ``near_dedup`` (bands, verification, clusters, drop) and
``near_dedup_across`` (against the latest version of every other source),
``report`` (Data Docs + markdown), ``ci`` (sample corpus for CI). Great Expectations and pandas
are imported only by the GX engine and the report; polars lazily, so ``--help`` stays fast.
"""
