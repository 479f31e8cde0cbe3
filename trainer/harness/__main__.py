"""``python -m trainer.harness --model hrm --model_args run=runs/NAME --tasks ...``: lm-eval's own
command line, with our ``hrm`` model registered first (lm-eval itself has no way to import it)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    import os

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        import trainer.harness  # noqa: F401 - registers the "hrm" model
        from lm_eval.__main__ import cli_evaluate
    except ImportError as exc:
        print(f"error: the lm-eval adapter needs lm-eval ({exc}); pip install -e '.[lmeval]'", file=sys.stderr)
        return 2
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    cli_evaluate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
