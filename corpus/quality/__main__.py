"""``python -m corpus.quality {check,report,ci}``: run the suites, report, gate CI.

    check  [VERSION|SOURCE ...] [--engine gx|native]
                                        re-validate (updates published/failed); exit 1 on any failure
    report --out DIR [VERSION|SOURCE ...]  Data Docs (HTML) + summary.md from the catalog
    ci --shared DIR --out DIR           build the shared sample corpus, report, print the summary
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m corpus.quality", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("check", help="re-run every suite; exit 1 when any version fails")
    c.add_argument("versions", nargs="*", help="version ids or source names (default: all)")
    c.add_argument("--data-dir", default=None)
    c.add_argument("--engine", choices=("gx", "native"), default="gx",
                   help="gx: Great Expectations, the reference (default; the audit); native: the build's numpy "
                        "engine, same suites and results")
    r = sub.add_parser("report", help="write GX Data Docs and a markdown summary")
    r.add_argument("versions", nargs="*", help="version ids or source names (default: all)")
    r.add_argument("--out", type=Path, required=True, help="output directory")
    r.add_argument("--data-dir", default=None)
    r.add_argument("--print", action="store_true", help="also print the markdown summary")
    r.add_argument("--check", action="store_true", help="exit 1 unless everything reported passed")
    ci = sub.add_parser("ci", help="build the shared sample corpus into a temp root, report, fail on failure")
    ci.add_argument("--shared", type=Path, required=True, help="the shared data directory (../shared/data)")
    ci.add_argument("--out", type=Path, required=True, help="report directory")
    ci.add_argument("--data-dir", type=Path, default=None, help="data root (default: a fresh temp dir)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from corpus.cli import run_cli

    return run_cli(lambda: _run(args))


def _run(args) -> int:
    from corpus.catalog import Catalog
    from corpus.paths import data_root

    if args.command == "ci":
        from corpus.quality.ci import run_ci

        if args.data_dir is not None:
            return run_ci(args.shared, args.out, args.data_dir)
        with tempfile.TemporaryDirectory(prefix="hrm-quality-ci-") as tmp:
            return run_ci(args.shared, args.out, Path(tmp))
    root = data_root(args.data_dir)
    catalog = Catalog(root)
    if not catalog.path.exists():
        from corpus.errors import UserError

        raise UserError(f"no catalog at {catalog.path}: build something first (python -m corpus.build ...)")
    if args.command == "check":
        return _check(catalog, root, args.versions, args.engine)
    from corpus.quality.report import write_report

    report = write_report(catalog, root, args.out, args.versions or None)
    if args.print:
        print(report.markdown)
    print(f"summary: {report.summary}")
    print(f"Data Docs: {report.docs_index}")
    print("PASS" if report.success else "FAIL")
    return 1 if args.check and not report.success else 0


def _check(catalog, root: Path, wanted: list[str], engine: str = "gx") -> int:
    from corpus.publish import publish
    from corpus.quality.report import select_versions

    from corpus.progress import progress_bar

    versions = select_versions(catalog, wanted or None)
    failed = 0
    with progress_bar("check", total=len(versions)) as bar:
        for v in versions:
            bar.describe(f"check {v['source']} {v['id']}")
            status, failures = publish(catalog, root, v["id"], engine=engine)
            bar.print(f"{v['source']} {v['id']}: {status}")
            for line in failures:
                bar.print(f"  - {line}")
            failed += status != "published"
            bar.advance()
    print(f"{len(versions) - failed} of {len(versions)} versions pass ({engine} engine)")
    from corpus.quality.eval_guard import train_eval_overlaps

    # over every version, not only the selected ones: the other half of a pair may be anywhere
    overlaps = train_eval_overlaps(catalog, select_versions(catalog, None))
    for line in overlaps:
        print(f"failed: {line}")
    return 1 if failed or overlaps or not versions else 0


if __name__ == "__main__":
    sys.exit(main())
