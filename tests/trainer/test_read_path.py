"""Issue 14 item 5: every consumer checks what it opens. A flipped byte in a shard sidecar, an
edited tokenizer copy, a flipped byte in best-model/model.pt, a truncated plan Parquet or an
edited plan.json: one line naming the file and how to rebuild it, never a run on damaged data."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from corpus.catalog import Catalog
from corpus.errors import UserError
from tests.trainer.conftest import REPO, env


def _flip(path: Path, at: float = 0.5) -> bytes:
    original = path.read_bytes()
    data = bytearray(original)
    data[max(200, int(len(data) * at)) % len(data)] ^= 0x01
    path.write_bytes(bytes(data))
    return original


@pytest.fixture(scope="module")
def trained(tiny, tmp_path_factory):
    """A private copy of the tiny data root and one finished run on it."""
    base = tmp_path_factory.mktemp("readpath")
    root = base / "data"
    shutil.copytree(tiny.root, root)
    tiny.run("--data_dir", str(root), runs=base / "runs")
    return root, base / "runs"


def _files(root: Path, role: str) -> list[Path]:
    return [root / r[0] for r in Catalog(root).query("SELECT path FROM files WHERE role = ? ORDER BY path", [role])]


def _one_line(p: subprocess.CompletedProcess) -> str:
    assert p.returncode == 2, p.stdout[-1500:] + p.stderr[-1500:]
    assert "Traceback" not in p.stderr
    return p.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("role", ["tokens", "index"])
def test_a_flipped_byte_in_a_shard_sidecar_stops_the_reader(trained, role):
    from corpus.mixing import PlanReader, open_plan
    from corpus.mixing.readcheck import forget

    root, _ = trained
    (plan_id,), = Catalog(root).query("SELECT id FROM mixes")
    target = _files(root, role)[0]
    original = _flip(target)
    try:
        forget()
        with pytest.raises(UserError) as exc:
            list(PlanReader(open_plan(root, plan_id), "train"))  # the trainer's quick open passes: same size
        msg = str(exc.value)
        assert str(target.relative_to(root)) in msg and "damaged (xxh3 does not match the catalog)" in msg
        assert "--rebuild" in msg and "\n" not in msg
    finally:
        target.write_bytes(original)
    forget()
    assert len(list(PlanReader(open_plan(root, plan_id), "train"))) > 0


def test_the_trainer_refuses_a_damaged_sidecar_and_tokenizer_copy(tiny, trained, tmp_path):
    root, _ = trained
    target = _files(root, "tokens")[0]
    original = _flip(target)
    try:
        line = _one_line(tiny.run("--data_dir", str(root), runs=tmp_path / "a", check=False))
        assert str(target.relative_to(root)) in line and "damaged" in line
    finally:
        target.write_bytes(original)
    tok = next(p for p in (root / "tokenizers").glob("*.json") if len(p.stem) == 64)
    text = tok.read_text()
    tok.write_text(text.replace('"<eos>"', '"<eos>" ', 1) if '"<eos>"' in text else text + " ")  # still valid JSON
    try:
        line = _one_line(tiny.run("--data_dir", str(root), runs=tmp_path / "b", check=False))
        assert str(tok) in line and "damaged" in line
    finally:
        tok.write_text(text)


def test_generate_refuses_a_flipped_byte_in_the_best_model(trained):
    root, runs = trained
    model = runs / "tiny" / "best-model" / "model.pt"
    cmd = [sys.executable, "-m", "trainer.generate", str(runs / "tiny"), "--prompt", "1 + 1 =", "--max-new-tokens",
           "2", "--data-dir", str(root)]
    ok = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=REPO, timeout=240)
    assert ok.returncode == 0, ok.stderr[-2000:]
    original = _flip(model)
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=REPO, timeout=240)
        line = _one_line(p)
        assert str(model) in line and "corrupt" in line
    finally:
        model.write_bytes(original)


def test_a_damaged_plan_is_planned_again_not_already_planned(tiny, trained):
    root, _ = trained
    (plan_id,), = Catalog(root).query("SELECT id FROM mixes")
    parquet = next(p for p in _files(root, "plan") if p.name == "plan-train.parquet")
    plan_json = parquet.with_name("plan.json")
    good = parquet.read_bytes(), plan_json.read_bytes()
    mix = [sys.executable, "-m", "corpus.mix", str(tiny.manifest), "--data-dir", str(root)]
    parquet.write_bytes(good[0][: len(good[0]) // 2])  # truncated
    p = subprocess.run(mix, capture_output=True, text=True, env=env(), cwd=REPO, timeout=240)
    assert p.returncode == 0 and "Traceback" not in p.stderr, p.stderr[-2000:]
    assert "planning it again" in p.stderr and "already planned" not in p.stdout
    assert parquet.read_bytes() == good[0]  # deterministic: the same plan again
    plan_json.write_text("{ not json")
    p = subprocess.run(mix, capture_output=True, text=True, env=env(), cwd=REPO, timeout=240)
    assert p.returncode == 0 and "planning it again" in p.stderr, p.stderr[-2000:]
    assert plan_json.read_bytes() == good[1]
    from corpus.mixing import open_plan

    parquet.write_bytes(good[0][:100])
    with pytest.raises(UserError, match="re-run python -m corpus.mix on its manifest"):
        open_plan(root, plan_id)  # by id (no manifest to plan from): refused in one line
    parquet.write_bytes(good[0])


def test_rebuild_restores_a_damaged_version_with_the_same_id(tmp_path):
    import json

    from corpus.build import main as build_main
    from corpus.tokenizer import train_tokenizer

    records = [{"question": f"Sam has {i} cards and gets {i + 4} more. How many cards?",
                "answer": f"Sam has {i} + {i + 4} = {2 * i + 4} cards.\n#### {2 * i + 4}"} for i in range(50)]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in records))
    tok = train_tokenizer([r["question"] + r["answer"] for r in records] * 5, vocab_size=300)
    tok_path = tmp_path / "tok.json"
    tok.save(str(tok_path))
    root = tmp_path / "data"
    args = ["gsm8k", "--from", str(src), "--tokenizer", str(tok_path), "--data-dir", str(root), "--quiet"]
    assert build_main(args) == 0
    target = _files(root, "tokens")[0]
    good = target.read_bytes()
    _flip(target)
    assert build_main(args) == 0  # already built: the damage is not noticed by a plain build
    assert build_main([*args, "--rebuild"]) == 0
    assert target.read_bytes() == good
    assert len(Catalog(root).query("SELECT id FROM versions")) == 1
    v = subprocess.run([sys.executable, "-m", "corpus.verify", "--data-dir", str(root)], capture_output=True,
                       text=True, env=env(), cwd=REPO)
    assert v.returncode == 0, v.stderr


def test_evaluation_sets_and_the_mixer_check_the_shard_parquet(trained):
    from corpus.mixing.pool import shard_tiers
    from corpus.mixing.readcheck import forget
    from trainer.eval.catalog_data import version_rows

    root, _ = trained
    shard = Catalog(root).query_dicts("SELECT * FROM shards ORDER BY version, split, idx")[0]
    target = root / shard["path"]
    original = _flip(target, at=0.3)
    try:
        forget()
        for read in (lambda: list(version_rows(root, shard["version"])), lambda: shard_tiers(root, shard)):
            with pytest.raises(UserError, match="damaged .*--rebuild"):
                read()
    finally:
        target.write_bytes(original)
    forget()
    assert len(list(version_rows(root, shard["version"]))) > 0
