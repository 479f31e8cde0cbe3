"""Mixing: manifest → deterministic, auditable plan → the trainer's reader.

    manifests/X.toml ──load_manifest──► Manifest (pydantic; one-line errors naming file and key)
          │ resolve: tokenizer + one published version per source (trains / builds what is missing)
          ▼
    plan id = hash(tokenizer, versions, weights, tiers, sizes, seed, window)
          │ source_schedule ─► tier_sequence ─► epoch_draws          (stratify.py, docs/mixing.md)
          ▼
    data/mixes/<mix>/<plan-id>/plan-{train,val}.parquet ─► catalog: mixes, mix_components,
          │                                                  mix_tier_targets, audit views
          ▼
    open_plan(root, id | manifest) ─► PlanReader(plan, split, start, rank, world_size)
          │                             └─ Sample(position, id, source, tier, tokens, prompt_len)
          └─ export_jsonl(plan, DIR): the blueprint trainer's train.jsonl / val.jsonl / meta.json
"""

from corpus.mixing.reader import Batch, Plan, PlanReader, Sample, open_plan

__all__ = ["Batch", "Plan", "PlanReader", "Sample", "open_plan"]
