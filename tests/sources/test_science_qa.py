"""ScienceQA: both layouts, images stored and decodable, missing/corrupt images, captions, bad input."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from corpus.catalog import Catalog
from corpus.sources.images import bounded_size
from tests.conftest import shared
from tests.sources.helpers import build, counters, latest, quarantine, rows_of

LETTERS = "ABCDE"


@pytest.fixture(scope="module")
def shared_builds(tmp_path_factory, tokenizer_path):
    """The shared subset built with --split train, test and all, into one data root."""
    root = tmp_path_factory.mktemp("sqa")
    src = shared("scienceqa")
    versions = {}
    for split in ("train", "test", "all"):
        assert build(root, tokenizer_path, "science_qa", "--from", str(src), "--split", split) == 0
        versions[split] = latest(root)
    return root, versions


@pytest.fixture(scope="module")
def shared_all(shared_builds):
    root, versions = shared_builds
    return root, versions["all"], rows_of(root, versions["all"]["id"]), shared("scienceqa")


def test_all_100_problems_kept_with_their_native_splits(shared_all):
    _, version, rows, _ = shared_all
    facts = (version["rows"], version["quarantined"], version["status"], version["kind"])
    assert facts == (100, 0, "published", "eval")
    assert Counter(r["meta"]["split"] for r in rows) == {"train": 50, "test": 50}
    assert len({r["id"] for r in rows}) == 100


@pytest.mark.parametrize("split, kind", [("train", "train"), ("test", "eval")])
def test_each_split_builds_its_50_problems(shared_builds, split, kind):
    root, versions = shared_builds
    v = versions[split]
    assert (v["rows"], v["kind"]) == (50, kind)
    assert {r["meta"]["split"] for r in rows_of(root, v["id"])} == {split}


def test_24_test_images_stored_and_decode_to_their_original_or_bounded_size(shared_all):
    _, _, rows, src = shared_all
    with_image = [r for r in rows if r["image"] is not None]
    assert len(with_image) == 24 and {r["meta"]["split"] for r in with_image} == {"test"}
    bounded = 0
    for row in with_image:
        stored = Image.open(io.BytesIO(row["image"]))
        stored.load()
        original = Image.open(src / row["meta"]["image_ref"]).convert("RGB")
        expected = bounded_size(*original.size, 512)
        assert stored.format == "PNG" and stored.mode == "RGB"
        assert stored.size == expected == (row["image_width"], row["image_height"])
        if expected == original.size:  # lossless: the very same pixels
            assert np.array_equal(np.asarray(stored), np.asarray(original))
        else:
            bounded += 1
            assert max(expected) == 512
    assert bounded > 0 and bounded < 24  # both cases are exercised by the shared images


def test_22_image_problems_missing_their_file_are_kept_and_counted(shared_all):
    root, version, rows, _ = shared_all
    missing = [r for r in rows if r["features"]["image_missing"]]
    assert len(missing) == 22 and all(r["image"] is None for r in missing)
    assert {r["meta"]["split"] for r in missing} == {"train"}
    assert all(r["meta"]["image_ref"].startswith("images/train/") for r in missing)
    assert counters(root, version["id"]) == {"image missing": 22}
    assert sum(r["features"]["has_image"] for r in rows) == 46


def test_prompt_target_and_answer_follow_the_problem(shared_all):
    _, _, rows, src = shared_all
    problems = json.loads((src / "problems.json").read_text())
    for row in rows:
        p = problems[row["meta"]["pid"]]
        letter = LETTERS[p["answer"]]
        assert row["prompt"].startswith(f"Question: {p['question']}\nOptions:\n(A) {p['choices'][0]}")
        assert all(f"({LETTERS[i]}) {c}" in row["prompt"] for i, c in enumerate(p["choices"]))
        assert (f"Context: {p['hint'].strip()}" in row["prompt"]) == bool(p["hint"].strip())
        assert row["target"].endswith(f"The answer is ({letter}).") and row["meta"]["answer"] == letter
        assert p["solution"].strip() in row["target"] and p["lecture"].strip() in row["target"]
        assert row["id"] == f"science_qa:{row['meta']['pid']}"


def test_tier_is_the_grade_band(shared_all):
    root, version, rows, src = shared_all
    problems = json.loads((src / "problems.json").read_text())
    for row in rows:
        grade = int(problems[row["meta"]["pid"]]["grade"].removeprefix("grade"))
        assert row["features"]["grade"] == grade
        assert row["tier"] == (grade >= 3) + (grade >= 6) + (grade >= 9)
    hist = dict(Catalog(root).query("SELECT tier, rows FROM tiers WHERE version = ? AND rule = 'scienceqa-grade@v1'",
                                    [version["id"]]))
    assert hist == dict(Counter(r["tier"] for r in rows)) and len(hist) == 4


def test_captions_join_the_prompt_and_change_the_version(shared_builds, tokenizer_path):
    root, versions = shared_builds
    src = shared("scienceqa")
    captions = json.loads((src / "captions.json").read_text())["captions"]
    assert build(root, tokenizer_path, "science_qa", "--from", str(src), "--split", "test",
                 "--captions", str(src / "captions.json")) == 0
    v = latest(root)
    rows = rows_of(root, v["id"])
    captioned = [r for r in rows if r["features"]["has_caption"]]
    assert len(captioned) == 24
    for row in captioned:
        assert f"\nImage: {captions[row['meta']['pid']].strip()}" in row["prompt"]
    assert all("\nImage: " not in r["prompt"] for r in rows if not r["features"]["has_caption"])
    plain = versions["test"]
    assert plain["id"] != v["id"] and plain["rows"] == v["rows"] == 50
    assert not any("\nImage: " in r["prompt"] for r in rows_of(root, plain["id"]))


def test_require_images_quarantines_the_missing_ones(tmp_path, tokenizer_path):
    assert build(tmp_path, tokenizer_path, "science_qa", "--from", str(shared("scienceqa")), "--split", "all",
                 "--require-images", "--max-bad-ratio", "0.5") == 0
    v = latest(tmp_path)
    q = quarantine(tmp_path, v["id"])
    assert (v["rows"], v["quarantined"], len(q)) == (78, 22, 22)
    assert {x["field"] for x in q} == {"image"}
    assert all(x["reason"].startswith("image missing: images/train/") for x in q)
    assert counters(tmp_path, v["id"]) == {}


# -- a small original layout with a corrupt PNG, a large transparent one, and bad records ---------

def _png(size=(40, 30), mode="RGB", color=(200, 30, 30)) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color).save(out, format="PNG")
    return out.getvalue()


def _problem(i: int, split: str, image: str | None = None, **over) -> dict:
    return {"question": f"Which option is number {i}?", "choices": ["one", "two", "three"], "answer": i % 3,
            "hint": "Count carefully.", "image": image, "task": "closed choice", "grade": f"grade{1 + i % 12}",
            "subject": "natural science", "topic": "counting", "category": "Counting", "skill": "Count",
            "lecture": "Numbers name amounts.", "solution": f"The number is {i}.", "split": split, **over}


def _layout(root: Path, problems: dict, images: dict[str, bytes], splits: dict | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "problems.json").write_text(json.dumps(problems))
    if splits is not False:
        own = {p: v.get("split") for p, v in problems.items() if isinstance(v, dict)}
        splits = splits or {s: [p for p, split in own.items() if split == s] for s in ("train", "test")}
        (root / "pid_splits.json").write_text(json.dumps(splits))
    for rel, data in images.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def _small(tmp_path) -> Path:
    good = _png()
    wide = _png((900, 300), "RGBA", (0, 0, 255, 0))  # fully transparent blue: stored as white
    problems = {str(i): _problem(i, "test" if i > 20 else "train") for i in range(1, 41)}
    for pid in ("21", "22", "23", "24", "25"):
        problems[pid]["image"] = "image.png"
    images = {"images/test/21/image.png": good, "images/test/22/image.png": wide,
              "images/test/23/image.png": good[: len(good) // 2],  # truncated: a corrupt PNG
              "images/test/24/image.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 40}  # header, then garbage
    return _layout(tmp_path / "sqa", problems, images)  # 25's image is missing


def test_corrupt_and_missing_images_are_kept_null_and_counted(tmp_path, tokenizer_path, capsys):
    src = _small(tmp_path)
    assert build(tmp_path / "data", tokenizer_path, "science_qa", "--from", str(src), "--split", "test") == 0
    out = capsys.readouterr().out
    assert "counted: image missing: 1, image undecodable: 2" in " ".join(out.split())
    v = latest(tmp_path / "data")
    rows = {r["meta"]["pid"]: r for r in rows_of(tmp_path / "data", v["id"])}
    assert (v["rows"], v["quarantined"]) == (20, 0)
    assert counters(tmp_path / "data", v["id"]) == {"image missing": 1, "image undecodable": 2}
    assert rows["21"]["image"] is not None and (rows["21"]["image_width"], rows["21"]["image_height"]) == (40, 30)
    wide = Image.open(io.BytesIO(rows["22"]["image"]))
    assert wide.size == (512, 171) == (rows["22"]["image_width"], rows["22"]["image_height"]) and wide.mode == "RGB"
    assert wide.getpixel((10, 10)) == (255, 255, 255)
    for pid in ("23", "24"):
        assert rows[pid]["image"] is None and rows[pid]["image_width"] is None
        assert rows[pid]["features"]["image_undecodable"] == 1 and rows[pid]["features"]["has_image"] == 1
    assert rows["25"]["features"]["image_missing"] == 1 and rows["25"]["image"] is None


def test_require_images_quarantines_corrupt_and_missing(tmp_path, tokenizer_path):
    src = _small(tmp_path)
    assert build(tmp_path / "data", tokenizer_path, "science_qa", "--from", str(src), "--split", "test",
                 "--require-images", "--max-bad-ratio", "0.5") == 0
    v = latest(tmp_path / "data")
    found = {q["ref"].rsplit("#", 1)[1]: (q["field"], q["reason"]) for q in quarantine(tmp_path / "data", v["id"])}
    assert set(found) == {"23", "24", "25"} and {f for f, _ in found.values()} == {"image"}
    assert found["23"][1].startswith("image undecodable: images/test/23/image.png: ")
    assert found["24"][1].startswith("image undecodable: ")
    assert found["25"][1] == "image missing: images/test/25/image.png not found"
    assert v["rows"] == 17


def test_max_image_side_bounds_the_stored_image_and_limit_caps_problems(tmp_path, tokenizer_path):
    src = _small(tmp_path)
    assert build(tmp_path / "data", tokenizer_path, "science_qa", "--from", str(src), "--split", "test",
                 "--max-image-side", "90", "--limit", "3") == 0
    rows = {r["meta"]["pid"]: r for r in rows_of(tmp_path / "data", latest(tmp_path / "data")["id"])}
    assert sorted(rows) == ["21", "22", "23"]  # the first three test pids of pid_splits.json
    assert Image.open(io.BytesIO(rows["22"]["image"])).size == (90, 30)
    assert Image.open(io.BytesIO(rows["21"]["image"])).size == (40, 30)


def test_bad_problems_are_quarantined_naming_the_field(tmp_path, tokenizer_path):
    problems = {str(i): _problem(i, "train") for i in range(1, 41)}
    del problems["1"]["question"]
    problems["2"]["choices"] = "one, two"
    problems["3"]["choices"] = ["one", 2]
    problems["4"]["answer"] = 7
    problems["5"]["answer"] = "1"
    problems["6"]["grade"] = "kindergarten"
    problems["7"]["image"] = "../../etc/passwd"
    problems["8"]["hint"] = ["a", "list"]
    problems["9"] = "not an object"
    problems["10"]["choices"] = ["only one"]
    src = _layout(tmp_path / "sqa", problems, {}, splits={"train": list(problems)})
    assert build(tmp_path / "data", tokenizer_path, "science_qa", "--from", str(src), "--max-bad-ratio", "0.5") == 0
    v = latest(tmp_path / "data")
    found = {q["ref"].rsplit("#", 1)[1]: (q["field"], q["reason"]) for q in quarantine(tmp_path / "data", v["id"])}
    assert found == {
        "1": ("question", "missing field 'question'"),
        "2": ("choices", "expected list, got str"),
        "3": ("choices[1]", "expected text, got int"),
        "4": ("answer", "7 is not an index into 3 choices"),
        "5": ("answer", "expected int, got str"),
        "6": ("grade", "expected 'grade1'..'grade12', got 'kindergarten'"),
        "7": ("image", "'../../etc/passwd' is not a plain file name"),
        "8": ("hint", "expected text, got list"),
        "9": (None, "expected a JSON object, got str"),
        "10": ("choices", "needs at least 2 choices, got 1"),
    }
    assert all(q["ref"].startswith(str(src / "problems.json")) for q in quarantine(tmp_path / "data", v["id"]))
    assert v["rows"] == 30


@pytest.mark.parametrize("content, message", [
    ("", "no records read from"),
    ("{not json", "problems.json: not valid JSON"),
    ("[1, 2]", "problems.json: expected an object mapping pid → problem, got list"),
])
def test_unusable_problems_file_is_a_one_line_error(tmp_path, tokenizer_path, capsys, content, message):
    (tmp_path / "sqa").mkdir()
    (tmp_path / "sqa" / "problems.json").write_text(content)
    assert build(tmp_path / "data", tokenizer_path, "science_qa", "--from", str(tmp_path / "sqa")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_bad_side_files_and_splits_are_one_line_errors(tmp_path, tokenizer_path, capsys):
    src = _layout(tmp_path / "sqa", {"1": _problem(1, "train")}, {}, splits=False)
    (src / "pid_splits.json").write_text(json.dumps({"train": "1"}))
    assert build(tmp_path / "data", tokenizer_path, "science_qa", "--from", str(src)) == 2
    assert "pid_splits.json: expected an object mapping split → list of pids" in capsys.readouterr().err
    (src / "pid_splits.json").unlink()
    assert build(tmp_path / "data", tokenizer_path, "science_qa", "--from", str(src), "--split", "minival") == 2
    assert "no problems in split 'minival' (splits: train, all)" in capsys.readouterr().err
    bad_captions = tmp_path / "captions.json"
    bad_captions.write_text(json.dumps({"captions": {"1": 5}}))
    assert build(tmp_path / "data", tokenizer_path, "science_qa", "--from", str(src),
                 "--captions", str(bad_captions)) == 2
    assert "expected an object mapping pid → caption text" in capsys.readouterr().err
    # without pid_splits.json the problems' own split field decides
    assert build(tmp_path / "data", tokenizer_path, "science_qa", "--from", str(src)) == 0
    assert latest(tmp_path / "data")["rows"] == 1


def test_a_changed_image_or_split_list_changes_the_version_options():
    """--from fingerprints the files it names; images and pid_splits.json enter via options()."""
    import argparse
    import tempfile

    from corpus.sources.science_qa import ScienceQA

    with tempfile.TemporaryDirectory() as tmp:
        src = _small(Path(tmp))
        args = argparse.Namespace(split="test", inputs=[str(src / "problems.json")], captions=None,
                                  require_images=False, max_image_side=512)
        first = ScienceQA(args).options()
        assert ScienceQA(args).options() == first
        (src / "images/test/25").mkdir(parents=True)
        (src / "images/test/25/image.png").write_bytes(_png(color=(0, 200, 0)))
        second = ScienceQA(args).options()
        (src / "pid_splits.json").write_text(json.dumps({"test": ["21"]}))
        third = ScienceQA(args).options()
    assert len({first["side_files"], second["side_files"], third["side_files"]}) == 3


# -- Hugging Face parquet layout ------------------------------------------------------------------

def _hf_layout(root: Path) -> Path:
    import datasets

    features = datasets.Features({
        "image": datasets.Image(), "question": datasets.Value("string"),
        "choices": datasets.Sequence(datasets.Value("string")), "answer": datasets.Value("int8"),
        "hint": datasets.Value("string"), "grade": datasets.Value("string"),
        "lecture": datasets.Value("string"), "solution": datasets.Value("string"),
    })
    root.mkdir(parents=True)
    for split, n in (("train", 6), ("validation", 2), ("test", 4)):
        rows = [{"image": ({"bytes": _png((30 + i, 20)), "path": None} if i % 2 == 0 else None),
                 "question": f"{split} question {i}?", "choices": ["yes", "no"], "answer": i % 2, "hint": "",
                 "grade": f"grade{i + 1}", "lecture": "", "solution": f"Because {i}."} for i in range(n)]
        if split == "test":
            rows[2]["image"] = {"bytes": b"\x89PNG\r\n\x1a\nbroken", "path": None}  # corrupt
        ds = datasets.Dataset.from_list(rows, features=features)
        ds.to_parquet(str(root / f"{split}-00000-of-00001.parquet"))
    return root


def test_hf_parquet_layout_reads_splits_from_file_names_and_decodes_images(tmp_path, tokenizer_path, capsys):
    import argparse

    from corpus.sources.science_qa import ScienceQA

    src = _hf_layout(tmp_path / "hf")
    source = ScienceQA(argparse.Namespace(captions=None, require_images=False, max_image_side=512))
    for split, n in (("train", 6), ("val", 2), ("validation", 2), ("test", 4)):
        assert len(list(source.records([str(src)], split, None))) == n, split
    for split, rows_expected, images in (("test", 4, 1), ("all", 12, 5)):
        assert build(tmp_path / "data", tokenizer_path, "science_qa", "--from", str(src), "--split", split) == 0
        v = latest(tmp_path / "data")
        rows = rows_of(tmp_path / "data", v["id"])
        assert len(rows) == rows_expected, split
        assert sum(r["image"] is not None for r in rows) == images, split
        for r in rows:
            if r["image"] is not None:
                assert Image.open(io.BytesIO(r["image"])).size == (r["image_width"], r["image_height"])
    rows = rows_of(tmp_path / "data", latest(tmp_path / "data")["id"])
    assert Counter(r["meta"]["split"] for r in rows) == {"train": 6, "val": 2, "test": 4}
    assert len({r["id"] for r in rows}) == 12 and all(r["id"].startswith("science_qa:h") for r in rows)
    assert counters(tmp_path / "data", latest(tmp_path / "data")["id"]) == {"image undecodable": 1}
    capsys.readouterr()
