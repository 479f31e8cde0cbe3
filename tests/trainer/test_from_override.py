"""``trainer.run M --from gsm8k=FILE`` trains on FILE's rows even when another gsm8k version
exists (issue 21: the override used to be ignored whenever any gsm8k version was published), and
the run's header says which version it used and how it was chosen."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

from tests.conftest import shared

from .conftest import TRAINER, env

MANIFEST = """
[run]
name = "fromtest"

[data]
tokenizer = "tokenizers/gsm.json"
max_seq_len = 1024
train_samples = 64
val_samples = 0

[[data.sources]]
name = "gsm8k"
weight = 1.0
"""


def test_from_override_trains_on_the_given_file(tmp_path):
    lines = shared("gsm8k", "train_sample.jsonl").read_text().splitlines(keepends=True)
    earlier, wanted = tmp_path / "earlier.jsonl", tmp_path / "wanted.jsonl"
    earlier.write_text("".join(lines[:60]))
    wanted.write_text("".join(lines[60:120]))
    root = tmp_path / "data"

    def cli(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env(),
                              cwd=tmp_path, timeout=300)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        return proc

    cli("corpus.tokenizer", "train", "--from", str(earlier), str(wanted), "--vocab-size", "320", "--out",
        str(root / "tokenizers" / "gsm.json"))
    cli("corpus.build", "gsm8k", "--from", str(earlier), "--tokenizer", str(root / "tokenizers" / "gsm.json"),
        "--val-ratio", "0", "--data-dir", str(root), "--quiet")
    manifest = tmp_path / "m.toml"
    manifest.write_text(MANIFEST + TRAINER)
    run = cli("trainer.run", str(manifest), "--from", f"gsm8k={wanted}", "--data_dir", str(root),
              "--runs_dir", str(tmp_path / "runs"), "--steps", "2", "--val_every", "2")

    from corpus.catalog import Catalog
    from corpus.mixing import PlanReader, open_plan

    versions = {r["id"]: r for r in Catalog(root).query_dicts("SELECT id, input_fingerprint FROM versions")}
    assert len(versions) == 2  # the earlier version and the one --from declared
    from trainer.checkpoint import load

    plan_id = load(tmp_path / "runs" / "fromtest" / "checkpoints" / "final.pt")["plan_id"]
    plan = open_plan(root, plan_id)
    used = plan.sources[0]["version"]
    assert f"data gsm8k: {used} (built from the declaration, inputs {versions[used]['input_fingerprint'][:12]})" \
        in run.stdout

    def row_ids(part: list[str]) -> set[str]:  # the gsm8k source's row id: the record's id, else its question's hash
        records = [json.loads(line) for line in part]
        return {f"gsm8k:{r.get('id') or hashlib.sha256(r['question'].strip().encode()).hexdigest()[:16]}"
                for r in records}

    drawn = {s.id for s in PlanReader(plan, "train")}
    assert len(drawn) > 10 and drawn <= row_ids(lines[60:120]) and not drawn & row_ids(lines[:60])
