"""Synthetic holdout: fresh items from the corpus generators, graded by their own checkers, per tier.

The holdout seed (``HOLDOUT_SEED`` unless ``--arith-seed``) must differ from every build seed of
the task's training versions. A different seed is an independent draw, but tier-0 problem spaces
are small (docs/synthetic.md: ~40% of arith tier-0 prompts of one seed appear in another), so
every holdout prompt that is also a prompt of the training versions (the run's plan, else every
published version of the task) is dropped and more are drawn; the result says how many. Without a
catalog the overlap cannot be checked, and the result says that instead.

Tasks: ``--arith-tasks``, else the plan's ``synthetic:*`` sources, else ``arith``; tiers: those the
training version was built with, else 0-3. ``--limit N``: N items per task, spread over its tiers
(default 50 per tier).
Metrics: ``accuracy`` (all items), ``<task>/accuracy``, ``<task>/tier<k>/accuracy`` and ``/n``,
``dropped_seen`` (holdout draws that were training prompts), ``dropped_repeat`` (drawn twice).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from trainer.eval.datasets import DataSources, EvalItem
from trainer.eval.suites.base import (GenerateFn, Options, SuiteResult, Timer, check_lengths, grouped_accuracy,
                                      mean, skipped)

NAME = "arith"
HOLDOUT_SEED = 7_000_003
DEFAULT_PER_TIER = 50
DRAW_FACTOR = 40  # give up on a tier after this many draws per wanted item (tiny problem spaces)


@dataclass
class Training:
    """What the run trained on for one task: build seeds, tiers and prompts (None = unknown)."""

    versions: list[str] = field(default_factory=list)
    seeds: set[int] = field(default_factory=set)
    tiers: tuple[int, ...] | None = None
    prompts: set[str] | None = None
    why_unknown: str = ""


def training_of(task: str, sources: DataSources) -> Training:
    from trainer.eval import catalog_data

    root = sources.data_root
    if root is None or not catalog_data.catalog_exists(root):
        return Training(why_unknown=f"no catalog under {root}")
    name = f"synthetic:{task}"
    versions: list[str] = []
    if sources.plan_id:
        versions = [c["version"] for c in catalog_data.plan_components(root, sources.plan_id) if c["source"] == name]
    if not versions:
        versions = catalog_data.published_versions(root, name)
    if not versions:
        return Training(why_unknown=f"no {name} version in the catalog under {root}")
    out = Training(versions=versions, prompts=set())
    tiers: set[int] = set()
    for vid in versions:
        config = catalog_data.version_config(root, vid)
        options = config.get("options") or {}
        for seed in (config.get("seed"), options.get("seed")):
            if seed is not None:
                out.seeds.add(int(seed))
        tiers.update(int(t) for t in options.get("tiers") or [])
        out.prompts |= catalog_data.version_prompts(root, vid, "train")
    out.tiers = tuple(sorted(tiers)) or None
    return out


def holdout_items(task: str, tiers: tuple[int, ...], per_tier: int, seed: int, seen: set[str] | None,
                  ) -> tuple[list[EvalItem], dict[int, int], dict[int, int]]:
    """``per_tier`` items of each tier whose prompts are neither in ``seen`` (training) nor
    repeated; returns them and, per tier, how many draws were dropped as seen and as repeats."""
    from corpus.synthetic import iter_items

    items: list[EvalItem] = []
    dropped_seen: dict[int, int] = {}
    dropped_repeat: dict[int, int] = {}
    for tier in tiers:
        kept: set[str] = set()
        dropped_seen[tier] = dropped_repeat[tier] = 0
        for item in iter_items(task, per_tier * DRAW_FACTOR, (tier,), seed):
            if len(kept) == per_tier:
                break
            if seen is not None and item.prompt in seen:
                dropped_seen[tier] += 1
                continue
            if item.prompt in kept:
                dropped_repeat[tier] += 1
                continue
            kept.add(item.prompt)
            items.append(EvalItem(id=f"synthetic:{task}:{item.native_id}", prompt=item.prompt,
                                  reference=item.target, tier=tier, group=task, meta=dict(item.meta)))
    return items, dropped_seen, dropped_repeat


def evaluate(items: list[EvalItem], generate_fn: GenerateFn) -> SuiteResult:
    from corpus.synthetic import TASKS

    prompts = [it.prompt for it in items]
    generations = generate_fn(prompts)
    check_lengths(NAME, prompts, generations)
    records = [{"id": it.id, "task": it.group, "tier": it.tier, "generation": text,
                "answer": it.meta.get("answer"), "correct": TASKS[it.group].check(it.meta, text)}
               for it, text in zip(items, generations)]
    metrics: dict[str, float | int] = {"accuracy": mean(r["correct"] for r in records), "n": len(records)}
    metrics.update(grouped_accuracy(records, lambda r: r["task"]))
    metrics.update(grouped_accuracy(records, lambda r: f"{r['task']}/tier{r['tier']}"))
    return SuiteResult(NAME, metrics=metrics, records=records)


def plan_tasks(sources: DataSources) -> list[str]:
    from trainer.eval import catalog_data

    if sources.data_root is None or not sources.plan_id:
        return []
    return [c["source"].split(":", 1)[1] for c in catalog_data.plan_components(sources.data_root, sources.plan_id)
            if c["source"].startswith("synthetic:")]


def build_items(sources: DataSources, options: Options) -> tuple[list[EvalItem], dict, list[str]]:
    """The holdout for ``run`` (and the dev evals): items, counts for the metrics, notes."""
    from corpus.synthetic import TASKS, TIERS

    tasks = list(options.arith_tasks or plan_tasks(sources) or ["arith"])
    unknown = [t for t in tasks if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown synthetic task {unknown[0]!r}; known: {', '.join(TASKS)}")
    seed = HOLDOUT_SEED if options.arith_seed is None else int(options.arith_seed)
    items: list[EvalItem] = []
    counts: dict[str, int] = {"seed": seed, "dropped_seen": 0, "dropped_repeat": 0}
    notes: list[str] = []
    for task in tasks:
        training = training_of(task, sources)
        if seed in training.seeds:
            raise ValueError(f"holdout seed {seed} is a build seed of synthetic:{task} ({', '.join(training.versions)});"
                             f" pass another --arith-seed")
        tiers = training.tiers or TIERS
        per_tier = max(1, math.ceil(options.limit / len(tiers))) if options.limit else DEFAULT_PER_TIER
        got, dropped, repeats = holdout_items(task, tiers, per_tier, seed, training.prompts)
        items += got
        for tier, n in dropped.items():
            counts[f"{task}/tier{tier}/dropped_seen"] = n
            counts["dropped_seen"] += n
        counts["dropped_repeat"] += sum(repeats.values())
        short = [t for t in tiers if sum(1 for it in got if it.tier == t) < per_tier]
        if short:
            notes.append(f"{task}: tiers {short} ran out of unseen prompts after {DRAW_FACTOR}x draws")
        if training.prompts is None:
            notes.append(f"{task}: overlap with training not checked ({training.why_unknown})")
        elif sum(dropped.values()):
            notes.append(f"{task}: dropped {sum(dropped.values())} holdout prompts also in training "
                         f"({', '.join(f'tier {t}: {n}' for t, n in dropped.items() if n)}); tier-0 spaces are small")
    counts["overlap_checked"] = int(not any("not checked" in n for n in notes))
    return items, counts, notes


def run(ev, sources: DataSources, options: Options) -> SuiteResult:
    from trainer.eval.generation import text_generator

    try:
        items, counts, notes = build_items(sources, options)
    except ValueError as exc:
        return skipped(NAME, str(exc))
    generate_fn = text_generator(ev, options.max_new_tokens or ev.max_seq_len, batch_size=options.batch_size,
                                 progress=options.tick("arith generate"))
    with Timer() as t:
        result = evaluate(items, generate_fn)
    result.metrics.update(counts)
    result.notes += notes
    result.data = f"corpus.synthetic generators, seed {counts['seed']}"
    result.seconds = t.seconds
    return result
