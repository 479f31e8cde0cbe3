"""The report: markdown summary, Data Docs that render in a real browser, and the CI entry."""

from __future__ import annotations

import json
import re
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


REMOTE_LOAD = re.compile(r"""<(?:script|img)\b[^>]*\bsrc=["']?(?:https?:)?//|<link\b[^>]*\bhref=["']?(?:https?:)?//"""
                         r"""|url\(["']?(?:https?:)?//""", re.I)


def test_report_pages_load_nothing_from_the_network(qa_root, tmp_path):
    out = tmp_path / "report"
    assert quality_main(["report", "--out", str(out), "--data-dir", str(qa_root)]) == 0
    catalog = Catalog(qa_root)
    v = catalog.query_dicts("SELECT * FROM versions")[0]
    site = out / "gx" / "uncommitted" / "data_docs" / "local_site"
    pages = sorted(out.rglob("*.html"))
    assert len(pages) > 3
    for page in pages:
        text = page.read_text()
        assert not REMOTE_LOAD.search(text), f"{page}: {REMOTE_LOAD.search(text).group(0)}"
        for ref in re.findall(r'(?:src|href)="([^"#:]+)"', text):  # every local reference resolves
            assert (page.parent / ref).resolve().exists(), f"{page}: {ref}"
    # the GX index lists every validation statically, each row linking to its page
    index = (site / "index.html").read_text()
    validations = catalog.query_dicts("SELECT suite, shard FROM validations ORDER BY suite, shard")
    listed = re.findall(r'<tr><td><span class="hrm-docs-status-ok">&#10004; passed</span></td><td>jsonl</td>'
                        rf'<td><code>{v["id"]}</code></td><td><a href="(validations/[^"]+)">([^<]+)</a>', index)
    assert sorted(suite for _, suite in listed) == [r["suite"] for r in validations]
    assert all((site / href).is_file() for href, _ in listed)
    # every validation page names the source, the version and the shard it validated
    page = (site / next(href for href, suite in listed if suite == "qa.rows")).read_text()
    assert f"Data asset: jsonl {v['id']} train-00000" in re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page))
    assert f"jsonl-{v['id']}" in page
    # index.html: versions with their standing and Data Docs links, and the pictures inline
    front = (out / "index.html").read_text()
    assert re.search(rf'<tr class="row-latest"><td>jsonl</td><td><code>{v["id"]}</code></td>', front)
    assert all(f'href="{(site / href).relative_to(out).as_posix()}"' in front for href, _ in listed)
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,', front)) == 2  # lengths, tiers


def test_index_draws_every_plan(qa_root, tokenizer_path, tmp_path):
    from corpus.mixing.plan import make_plan
    from tests.mixing.helpers import write_manifest

    root = copy_root(qa_root, tmp_path / "data")
    data = {"tokenizer": str(tokenizer_path), "max_seq_len": 128, "train_samples": 400, "val_samples": 0,
            "window": 100}
    make_plan(write_manifest(tmp_path / "qa-mix.toml", data, [{"name": "jsonl", "weight": 1.0,
                                                                "max_epochs": 10}]), root, log=lambda m: None)
    (plan_id,) = Catalog(root).query("SELECT id FROM mixes")[0]
    out = tmp_path / "report"
    assert quality_main(["report", "--out", str(out), "--data-dir", str(root)]) == 0
    front = (out / "index.html").read_text()
    assert f'<img alt="plan qa-mix {plan_id}" src="data:image/png;base64,' in front
    assert "No mix plan in this data root" not in front


def test_superseded_versions_are_told_apart():
    from datetime import datetime

    from corpus.quality.index_page import standing

    t = [datetime(2026, 1, d) for d in (1, 2, 3, 4)]
    versions = [{"id": "a", "source": "wiki", "kind": None, "status": "published", "created_at": t[0]},
                {"id": "b", "source": "wiki", "kind": "train", "status": "published", "created_at": t[1]},
                {"id": "c", "source": "wiki", "kind": "train", "status": "failed", "created_at": t[2]},
                {"id": "d", "source": "wiki", "kind": "eval", "status": "published", "created_at": t[0]},
                {"id": "e", "source": "mbpp", "kind": "train", "status": "published", "created_at": t[3]}]
    assert standing(versions) == {"a": "superseded", "b": "latest", "c": "failed", "d": "latest", "e": "latest"}


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no headless Chromium on this machine (apt-get install -y chromium)")


def _offline_browser(browser: str, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium that cannot resolve any host: what a page shows here, it shows offline."""
    profile = tmp / f"chromium-profile-{len(list(tmp.glob('chromium-profile-*')))}"
    return subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--disable-quic", "--no-first-run", "--disable-background-networking",
                           "--disable-component-update", "--disable-sync", f"--user-data-dir={profile}",
                           '--host-resolver-rules=MAP * ~NOTFOUND', *args],
                          capture_output=True, text=True, timeout=120, check=False)


def _screenshot(browser: str, page: Path, png: Path, height: int = 900) -> np.ndarray:
    from PIL import Image

    _offline_browser(browser, png.parent, f"--window-size=1200,{height}", f"--screenshot={png}", page.as_uri())
    assert png.is_file(), f"chromium wrote no screenshot of {page}"
    return np.asarray(Image.open(png).convert("RGB")).astype(int)


def _green(pixels: np.ndarray) -> int:
    """Pixels of the passed-status colour (#1e7e34 and its anti-aliased edges)."""
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    return int(((g - r > 40) & (g - b > 20) & (g < 200)).sum())


def test_html_report_renders_offline_in_headless_chromium(qa_root, tmp_path):
    browser = _chromium()
    out = tmp_path / "report"
    assert quality_main(["report", "--out", str(out), "--data-dir", str(qa_root)]) == 0
    site = out / "gx" / "uncommitted" / "data_docs" / "local_site"
    n_validations = Catalog(qa_root).query("SELECT count(*) FROM validations")[0][0]
    # the GX index: the validations list is there, one row with a green tick per result
    dom = _offline_browser(browser, tmp_path, "--dump-dom", (site / "index.html").as_uri()).stdout
    assert dom.count('<span class="hrm-docs-status-ok">') == n_validations
    pixels = _screenshot(browser, site / "index.html", tmp_path / "gx-index.png")
    assert pixels.shape == (900, 1200, 3)
    assert _green(pixels) > 60 * n_validations, "no green status ticks on the Data Docs index"
    # a validation page: the Status column shows a tick per expectation (Font Awesome is not loaded)
    page = next((site / "validations" / "qa").rglob("*.html"))
    pixels = _screenshot(browser, page, tmp_path / "page.png", height=1400)
    dark = (pixels.mean(axis=2) < 128).mean()
    assert 0.005 < dark < 0.5, f"{page.name}: {dark:.3%} dark pixels: blank or broken rendering"
    assert _green(pixels) > 100, "empty Status column on the validation page"  # ~20 pixels per tick
    # the report's index.html: its embedded charts are decoded and drawn (the matplotlib blue)
    pixels = _screenshot(browser, out / "index.html", tmp_path / "index.png", height=2000)
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    assert ((b - r > 80) & (b - g > 30)).sum() > 2000, "the charts of index.html did not render"


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
