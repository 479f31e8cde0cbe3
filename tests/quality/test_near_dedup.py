"""Near-duplicates: MinHash-LSH found, verified, clustered, recorded in SQL, dropped on request.

The references are independent of the fast path: plain-Python word 5-gram sets and their exact
Jaccard, and datasketch's MinHash (SHA-1 of each shingle string) for the estimates.
"""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pyarrow.parquet as pq
import pytest

from corpus.catalog import Catalog
from corpus.quality import minhash
from corpus.quality.near_dedup import (NearDedupConfig, band_candidates, candidate_pairs, clusters,
                                       find_near_duplicates)
from tests.conftest import shared
from tests.quality.conftest import build, qa_records, write_jsonl

pytest.importorskip("rensa", reason="near-dedup needs rensa (a core dependency)")


def ref_shingles(text: str, n: int = 5) -> set[str]:
    """The reference: lower-cased words (letters and digits), their n-grams as strings."""
    words = re.findall(r"[^\W_]+", text.lower())
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


def ref_jaccard(a: str, b: str) -> float:
    sa, sb = ref_shingles(a), ref_shingles(b)
    return len(sa & sb) / len(sa | sb) if sa | sb else 0.0


def score(texts: list[str], planted: list[tuple[int, int]], config: NearDedupConfig) -> tuple[float, float, int]:
    """(recall of planted pairs at reference Jaccard ≥ threshold, precision of the reported pairs,
    how many planted pairs were eligible)."""
    found = find_near_duplicates(config.signatures(texts), lambda idx: [texts[i] for i in idx], config)
    cluster = dict(zip(found.rows.tolist(), found.clusters.tolist()))
    eligible = [(a, b) for a, b in planted if ref_jaccard(texts[a], texts[b]) >= config.threshold]
    recall = sum(cluster.get(a, a) == cluster.get(b, b) for a, b in eligible) / len(eligible)
    reported = list(zip(found.rows.tolist(), found.matches.tolist()))
    correct = sum(ref_jaccard(texts[r], texts[m]) >= config.threshold for r, m in reported)
    # the verified Jaccard is the exact one: it equals the reference on every reported pair
    assert np.allclose(found.verified, [ref_jaccard(texts[r], texts[m]) for r, m in reported])
    return recall, correct / max(1, len(reported)), len(eligible)


def edit_words(text: str, rng: random.Random, edits: int) -> str:
    words = text.split(" ")
    for _ in range(edits):
        k = rng.randrange(len(words))
        words[k] = str(rng.randint(2, 999)) if words[k][:1].isdigit() else words[k] + "s"
    return " ".join(words)


@pytest.mark.shared_data
def test_planted_gsm8k_problems_with_words_and_numbers_changed():
    rows = [json.loads(line) for line in shared("gsm8k", "train_sample.jsonl").read_text().splitlines()]
    rng = random.Random(25)
    texts = [f"{r['question']}\n{r['answer']}" for r in rows]
    planted = []
    for i in range(0, len(rows), 4):  # 250 copies, 1-3 words or numbers of the question changed
        planted.append((i, len(texts)))
        texts.append(f"{edit_words(rows[i]['question'], rng, rng.randint(1, 3))}\n{rows[i]['answer']}")
    recall, precision, eligible = score(texts, planted, NearDedupConfig())
    assert eligible >= 150, eligible
    assert recall >= 0.95 and precision >= 0.98, (recall, precision)


@pytest.mark.shared_data
def test_planted_wikitext_paragraphs_with_an_edited_sentence():
    text = shared("wikitext2", "valid.txt").read_text(encoding="utf-8")
    paragraphs = [p.strip() for p in text.split("\n") if len(p.split()) >= 120][:300]
    rng = random.Random(7)
    texts = list(paragraphs)
    planted = []
    for i in range(0, len(paragraphs), 2):
        sentences = paragraphs[i].split(" . ")
        k = rng.randrange(len(sentences))
        sentences[k] = edit_words(sentences[k], rng, 2) + " , as reported"
        planted.append((i, len(texts)))
        texts.append(" . ".join(sentences))
    recall, precision, eligible = score(texts, planted, NearDedupConfig())
    assert eligible >= 100, eligible
    assert recall >= 0.95 and precision >= 0.98, (recall, precision)


@pytest.mark.shared_data
def test_rensa_estimates_agree_with_datasketch_and_the_exact_jaccard():
    datasketch = pytest.importorskip("datasketch")
    rows = [json.loads(line) for line in shared("gsm8k", "train_sample.jsonl").read_text().splitlines()[:60]]
    rng = random.Random(3)
    pairs = []
    for r in rows:
        a = f"{r['question']}\n{r['answer']}"
        pairs.append((a, edit_words(a, rng, rng.randint(1, 12))))
    config = NearDedupConfig()
    sig = config.signatures([t for pair in pairs for t in pair])
    fast = (sig[0::2] == sig[1::2]).mean(axis=1)
    exact = np.array([ref_jaccard(a, b) for a, b in pairs])
    ref = []
    for a, b in pairs:
        ma, mb = datasketch.MinHash(num_perm=128, seed=1), datasketch.MinHash(num_perm=128, seed=1)
        ma.update_batch([s.encode() for s in ref_shingles(a)])
        mb.update_batch([s.encode() for s in ref_shingles(b)])
        ref.append(ma.jaccard(mb))
    ref = np.array(ref)
    assert exact.min() < 0.7 < 0.9 < exact.max()  # a spread of similarities, not one point
    assert np.abs(fast - exact).mean() < 0.04 and np.abs(ref - exact).mean() < 0.04
    assert np.abs(fast - ref).max() < 0.2


def test_shingles_follow_the_normalization_and_short_texts_still_count():
    a, b = minhash.shingle_arrays(["Hello,  World! one two three", "hello world ONE two three", "tiny", ""])[:2]
    assert a.tolist() == b.tolist() and len(a) == 1
    sets = minhash.shingle_arrays(["tiny", "", "a b c d e f a b c d e f"])
    assert [len(s) for s in sets] == [1, 0, 6]  # distinct 5-grams: abcde bcdef cdefa defab efabc fabcd
    assert minhash.jaccard(sets[2], sets[2]) == 1.0 and minhash.jaccard(sets[1], sets[1]) == 0.0
    chars = minhash.shingle_arrays(["abcdefgh"], "char", 7)[0]
    assert len(chars) == 2
    sig = NearDedupConfig().signatures(["", "", "same words here", "same words here"])
    # two empty rows never pair up; two equal texts always do
    pairs = candidate_pairs(sig, 16)
    assert pairs.tolist() == [[2, 3]]


def test_band_candidates_and_union_find():
    band = np.array([[1, 2], [5, 5], [1, 2], [1, 2], [5, 5], [7, 7]], dtype=np.uint32)
    assert sorted(map(tuple, band_candidates(0, band).tolist())) == [(0, 2), (0, 3), (1, 4)]
    assert clusters(6, np.array([[3, 4], [0, 3], [1, 5]])).tolist() == [0, 1, 2, 0, 0, 1]


def test_band_step_on_worker_processes_equals_the_serial_one():
    import multiprocessing as mp

    rng = np.random.default_rng(0)
    sig = rng.integers(0, 50, size=(400, 32), dtype=np.uint32)  # small alphabet: many collisions
    sig[200:] = sig[:200]
    serial = candidate_pairs(sig, 8)
    with mp.get_context("fork").Pool(2) as pool:
        parallel = candidate_pairs(sig, 8, pool)
    assert len(serial) >= 200 and serial.tolist() == parallel.tolist()


def test_config_is_validated_in_one_line():
    from corpus.errors import UserError

    with pytest.raises(UserError, match="multiple of --near-dedup-bands"):
        NearDedupConfig(num_perm=100, bands=16)
    with pytest.raises(UserError, match="threshold"):
        NearDedupConfig(threshold=1.5)


ARGS = ("--target-field", "answer", "--id-field", "id", "--val-ratio", "0.1", "--max-dup-rate", "0.2")


def near_records() -> tuple[list[dict], set[str]]:
    """Distinct QA records and, for every 8th, a copy with one word changed (a near-duplicate)."""
    rows = []
    for i, r in enumerate(qa_records(160)):
        r = dict(r, prompt=r["prompt"] + f" Note {i}: " + " ".join(f"w{i}x{k}" for k in range(20)))
        rows.append(r)
    copies = [dict(r, id=f"near{r['id']}", prompt=r["prompt"].replace("every morning", "each morning"))
              for r in rows[::8]]
    return rows + copies, {c["id"] for c in copies}


def test_drop_removes_exactly_the_listed_rows_and_a_mix_has_none(tmp_path, tokenizer_path):
    records, copies = near_records()
    src = write_jsonl(tmp_path / "near.jsonl", records)
    flag_root, drop_root = tmp_path / "flag", tmp_path / "drop"
    assert build(flag_root, tokenizer_path, "jsonl", "--from", str(src), *ARGS) == 0
    assert build(drop_root, tokenizer_path, "jsonl", "--from", str(src), *ARGS, "--near-dedup", "drop") == 0

    flag_cat, drop_cat = Catalog(flag_root), Catalog(drop_root)
    flagged = flag_cat.query_dicts("SELECT * FROM near_duplicates ORDER BY row_id")
    dropped = drop_cat.query_dicts("SELECT * FROM near_duplicates ORDER BY row_id")
    # one row per pair is listed (the later one); every planted pair is found, nothing else
    pairs = {frozenset((d["row_id"], d["duplicate_of"])) for d in flagged}
    assert pairs == {frozenset((f"jsonl:{c}", f"jsonl:{c[4:]}")) for c in copies}
    assert {d["action"] for d in flagged} == {"flagged"} and {d["action"] for d in dropped} == {"dropped"}
    assert [(d["row_id"], d["cluster"]) for d in dropped] == [(d["row_id"], d["cluster"]) for d in flagged]
    assert all(0.8 <= d["jaccard"] <= 1 and abs(d["estimated_jaccard"] - d["jaccard"]) < 0.2 for d in dropped)

    (flag_vid, flag_rows), = flag_cat.query("SELECT id, rows FROM versions")
    (drop_vid, drop_rows, quarantined, status), = drop_cat.query("SELECT id, rows, quarantined, status FROM versions")
    assert flag_vid != drop_vid and status == "published"  # drop changes what is kept: its own id
    gone = {d["row_id"] for d in dropped}
    assert flag_rows == len(records) and drop_rows == len(records) - len(gone) and quarantined == len(gone)

    def shard_ids(root, vid):
        return [i for (path,) in Catalog(root).query("SELECT path FROM shards WHERE version = ? ORDER BY split, idx",
                                                     [vid])
                for i in pq.read_table(root / path, columns=["id"]).column("id").to_pylist()]

    assert set(shard_ids(flag_root, flag_vid)) - set(shard_ids(drop_root, drop_vid)) == gone
    assert not gone & set(shard_ids(drop_root, drop_vid))
    reasons = {ref: reason for ref, reason in drop_cat.query("SELECT ref, reason FROM quarantine")}
    assert set(reasons) == gone
    for d in dropped:
        assert reasons[d["row_id"]].startswith(f"near-duplicate of {d['cluster']} (kept")
    rate, = drop_cat.query("SELECT near_duplicates, rate FROM near_duplicate_rates")
    assert rate[0] == len(gone) and rate[1] == pytest.approx(len(gone) / len(records))
    from corpus.quality.report import select_versions, summary_markdown

    markdown, _ = summary_markdown(drop_cat, drop_root, select_versions(drop_cat), None)
    near = markdown[markdown.index("## Near-duplicates"):]
    assert f"| drop | J ≥ 0.8, word 5-grams, 128/16 bands | {len(records)} | {len(gone)} | 11.11% | 20 | 0 |" in near
    # a dropped row's text is shown beside its match's, though no shard holds it now
    assert "side by side" in near and "each morning" in near and "every morning" in near

    import corpus

    assert corpus.verify_files(drop_root) == []  # the rewritten shards are the registered bytes

    plan = corpus.plan({"run": {"name": "near"}, "data": {
        "tokenizer": str(tokenizer_path), "max_seq_len": 256, "train_samples": 400, "val_samples": 20,
        "seed": 0, "sources": [{"name": "jsonl", "version": drop_vid, "weight": 1.0}]}}, data_dir=drop_root)
    planned = set()
    for split in ("train", "val"):
        rows = corpus.query("SELECT p.shard, p.row, s.path FROM mix_positions p JOIN shards s ON s.version = "
                            "p.version AND s.split = p.split AND s.idx = p.shard WHERE p.plan = ? AND p.split = ?",
                            data_dir=drop_root, params=[plan.id, split])
        for path, group in rows.group_by("path"):
            ids = pq.read_table(drop_root / path[0], columns=["id"]).column("id").to_pylist()
            planned.update(ids[r] for r in group["row"].to_list())
    assert len(planned) > 100 and not planned & gone


def test_off_records_nothing_and_flag_keeps_the_version_id(tmp_path, tokenizer_path):
    records, _ = near_records()
    src = write_jsonl(tmp_path / "near.jsonl", records)
    off_root, flag_root = tmp_path / "off", tmp_path / "flag"
    assert build(off_root, tokenizer_path, "jsonl", "--from", str(src), *ARGS, "--near-dedup", "off") == 0
    assert build(flag_root, tokenizer_path, "jsonl", "--from", str(src), *ARGS, "--near-dedup", "flag",
                 "--near-dedup-threshold", "0.9") == 0
    off, flag = Catalog(off_root), Catalog(flag_root)
    assert off.query("SELECT count(*) FROM near_dedup_runs") == [(0,)]
    # flag only records: the same rows, so the same version whatever its threshold
    assert off.query("SELECT id FROM versions") == flag.query("SELECT id FROM versions")
    assert flag.query("SELECT policy, threshold FROM near_dedup_runs") == [("flag", 0.9)]


def test_without_rensa_flag_is_skipped_in_one_line_and_drop_refused(tmp_path, tokenizer_path, monkeypatch, capsys):
    import sys

    src = write_jsonl(tmp_path / "qa.jsonl", qa_records(40))
    monkeypatch.setitem(sys.modules, "rensa", None)  # what an environment without rensa sees
    minhash.rensa.cache_clear()
    try:
        assert build(tmp_path / "flag", tokenizer_path, "jsonl", "--from", str(src), *ARGS) == 0
        assert "near-dedup skipped: near-dedup needs rensa: pip install 'rensa==0.5.0'" in capsys.readouterr().out
        assert build(tmp_path / "drop", tokenizer_path, "jsonl", "--from", str(src), *ARGS,
                     "--near-dedup", "drop") == 2
        assert "--near-dedup drop: near-dedup needs rensa" in capsys.readouterr().err
    finally:
        minhash.rensa.cache_clear()
    assert Catalog(tmp_path / "flag").query("SELECT count(*) FROM near_dedup_runs") == [(0,)]


def test_across_sources_recorded_against_the_latest_version_of_each_other(tmp_path, tokenizer_path, capsys):
    records, _ = near_records()
    plain = ("--target-field", "answer", "--id-field", "id", "--val-ratio", "0", "--max-dup-rate", "0.2")
    root = tmp_path / "data"
    base = [r for r in records if not r["id"].startswith("near")][:60]
    assert build(root, tokenizer_path, "jsonl", "--from", str(write_jsonl(tmp_path / "a.jsonl", base)), *plain,
                 "--name", "alpha") == 0
    assert build(root, tokenizer_path, "jsonl", "--from", str(write_jsonl(tmp_path / "o.jsonl", qa_records(30, "o"))),
                 *plain, "--name", "omega", "--near-dedup", "off") == 0
    copies = [dict(r, id=f"copy{r['id']}", prompt=r["prompt"].replace("every morning", "each morning"))
              for r in base[:5]]
    capsys.readouterr()
    assert build(root, tokenizer_path, "jsonl", "--from", str(write_jsonl(tmp_path / "b.jsonl",
                                                                          copies + qa_records(40, "b"))),
                 *plain, "--name", "beta") == 0
    out = capsys.readouterr().out
    catalog = Catalog(root)
    alpha, = catalog.query("SELECT id FROM versions WHERE source = 'alpha'")[0]
    beta, = catalog.query("SELECT id FROM versions WHERE source = 'beta'")[0]
    across = catalog.query("SELECT row_id, duplicate_of_version, duplicate_of, scope, action FROM near_duplicates "
                           "WHERE version = ? AND scope = 'across' ORDER BY row_id", [beta])
    assert across == sorted((f"beta:copy{r['id']}", alpha, f"alpha:{r['id']}", "across", "flagged") for r in base[:5])
    assert catalog.query("SELECT across FROM near_duplicate_rates WHERE version = ?", [beta]) == [(5,)]
    assert "across: 5 rows near a row of alpha; not compared with omega" in " ".join(out.split())
    signature_files = catalog.query("SELECT count(*) FROM files WHERE role = 'near-signatures'")
    assert signature_files == [(2,)]  # alpha and beta; omega was built with --near-dedup off
