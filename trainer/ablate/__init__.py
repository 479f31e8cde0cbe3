"""``python -m trainer.ablate SPEC``: matched arms x seeds, trained, evaluated and compared.

    spec.py      the spec TOML: base manifest, arms (overrides of [model]/[train]/[eval]/[data]), seeds, suites
    runs.py      one arm manifest per arm; each (arm, seed) is ``python -m trainer.run`` (resumes, reuses)
    evaluate.py  the same items for every run (final.pt), per-item verdicts, the training record
    cost.py      parameters and counted training FLOPs per run
    stats.py     95% intervals over seeds and items; differences from the base arm, paired
    report.py    ablation.{json,md,png}

See docs/ablations.md.
"""
