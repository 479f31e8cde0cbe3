"""The report: markdown summary, Data Docs that render in a real browser, and the CI entry."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from corpus.catalog import Catalog
from corpus.quality.__main__ import main as quality_main
from tests.quality.conftest import SHARED, copy_root


def test_report_summarizes_the_catalog(qa_root, tmp_path, capsys):
    out = tmp_path / "report"
    assert quality_main(["report", "--out", str(out), "--data-dir", str(qa_root), "--print", "--check"]) == 0
    printed = capsys.readouterr().out
    catalog = Catalog(qa_root)
    v = catalog.query_dicts("SELECT * FROM versions")[0]
    summary = (out / "summary.md").read_text()
    assert summary in printed and summary.startswith("# Data quality report")
    assert "**PASS**: 1 versions, 1 published, 0 failed." in summary
    assert f"| jsonl | `{v['id']}` | train | published | {v['rows']:,} | {v['tokens']:,} | 0 |" in summary
    for split, tier, rows, tokens in catalog.query("SELECT split, tier, rows, tokens FROM tiers WHERE version = ?",
                                                   [v["id"]]):
        assert f"| {split} | {tier} | {rows:,} | {tokens:,} |" in summary
    evaluated = catalog.query("SELECT sum(evaluated) FROM validations")[0][0]
    assert f"Expectations: {evaluated} passed, 0 failed." in summary
    site = out / "gx" / "uncommitted" / "data_docs" / "local_site"
    assert (site / "index.html").is_file()
    pages = sorted((site / "validations").rglob("*.html"))
    assert len(pages) == catalog.query("SELECT count(*) FROM validations")[0][0]
    index = (out / "index.html").read_text()
    assert all(str(p.relative_to(out)) in index for p in pages)


def test_report_check_fails_on_a_failed_version(qa_root, tmp_path):
    root = copy_root(qa_root, tmp_path / "data")
    Catalog(root).query("UPDATE versions SET status = 'failed'")
    assert quality_main(["report", "--out", str(tmp_path / "r"), "--data-dir", str(root)]) == 0
    assert quality_main(["report", "--out", str(tmp_path / "r"), "--data-dir", str(root), "--check"]) == 1
    assert "**FAIL**" in (tmp_path / "r" / "summary.md").read_text()


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless Chromium on this machine (apt-get install -y chromium)")


def _screenshot(browser: str, page: Path, png: Path) -> np.ndarray:
    from PIL import Image

    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1200,900", f"--screenshot={png}", page.as_uri()],
                   capture_output=True, timeout=120, check=False)
    assert png.is_file(), f"chromium wrote no screenshot of {page}"
    return np.asarray(Image.open(png).convert("L"))


def test_html_report_renders_in_headless_chromium(qa_root, tmp_path):
    browser = _chromium()
    out = tmp_path / "report"
    assert quality_main(["report", "--out", str(out), "--data-dir", str(qa_root)]) == 0
    # a GX Data Docs page (index.html is plain HTML whose content test_report_summarizes_the_catalog reads)
    page = next((out / "gx" / "uncommitted" / "data_docs" / "local_site" / "validations").rglob("*.html"))
    pixels = _screenshot(browser, page, tmp_path / "page.png")
    dark = (pixels < 128).mean()  # text and table lines
    assert pixels.shape == (900, 1200)
    assert 0.005 < dark < 0.5, f"{page.name}: {dark:.3%} dark pixels: blank or broken rendering"
    assert len(np.unique(pixels)) > 20  # anti-aliased text, not a flat page


def test_ci_builds_what_is_available_and_notes_the_rest(tmp_path, monkeypatch, capsys):
    """The CI entry on a small shared folder: GSM8K test (eval) + a text file, no MBPP/ScienceQA/HumanEval."""
    import corpus.quality.ci as ci

    shared = tmp_path / "shared"
    gsm = SHARED / "gsm8k" / "test.jsonl"
    (shared / "gsm8k").mkdir(parents=True)
    lines = gsm.read_text().splitlines()[:40] if gsm.exists() else [
        json.dumps({"question": f"Tom has {i} apples and buys {i + 4} more at the busy market near the station "
                                f"on a rainy day; how many does he have now?",
                    "answer": f"{i} + {i + 4}\n#### {2 * i + 4}"})
        for i in range(40)]
    (shared / "gsm8k" / "test.jsonl").write_text("\n".join(lines) + "\n")
    (shared / "wikitext2").mkdir()
    (shared / "wikitext2" / "valid.txt").write_text("".join(
        f" = Article {a} = \n\n" + "".join(f" Line {i} of article {a} tells of {a * 31 + i} birds over the hill . \n"
                                           for i in range(30)) for a in range(3)))
    monkeypatch.setattr(ci, "SYNTHETIC_COUNT", 30)
    monkeypatch.setattr(ci, "SYNTHETIC_TASKS", 1)
    monkeypatch.setattr(ci, "VOCAB_SIZE", 600)
    out = tmp_path / "out"
    code = quality_main(["ci", "--shared", str(shared), "--out", str(out), "--data-dir", str(tmp_path / "data")])
    printed = capsys.readouterr().out
    result = json.loads((out / "ci.json").read_text())
    assert code == 0, printed
    assert result["success"] and not result["build_failures"]
    assert any("mbpp" in note for note in result["skipped"]) and any("humaneval" in n for n in result["skipped"])
    catalog = Catalog(tmp_path / "data")
    kinds = dict(catalog.query("SELECT source, kind FROM versions WHERE source IN ('gsm8k', 'wiki')"))
    assert kinds == {"gsm8k": "eval", "wiki": "train"}
    assert catalog.query("SELECT count(*) FROM versions WHERE status <> 'published'")[0][0] == 0
    summary = (out / "summary.md").read_text()
    assert summary in printed and "## Skipped in this run" in summary and "**PASS**" in summary
