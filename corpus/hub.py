"""What a hub read will see, resolved before the version id is computed.

A hub source used to be fingerprinted by dataset id, config and split only, so a dataset that
changed upstream kept its version id. :func:`resolve_hub` pins the input instead:

* a hub id resolves to a commit: ``--revision`` when it is one (40 hex digits), else the
  commit the hub reports for ``--revision`` (default ``main``), or offline the commit the local
  hub cache recorded for it (``refs/<revision>``); that commit is what ``datasets`` then reads;
* a local dataset repository (``--hub-dataset DIR``, a clone or mirror) resolves to the files
  of the requested split (``datasets``' own split naming rules), read directly like ``--from``
  files, and is fingerprinted by their content.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from corpus.errors import UserError

COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class HubInput:
    """``revision``: a commit, or ``None`` when the hub could not be asked (offline, no cache
    entry: the read then fails as before). ``files``: a local repository's split files."""

    hub_id: str
    revision: str | None
    files: list[Path] | None = None


def resolve_hub(hub_id: str | None, split: str, revision: str | None) -> HubInput:
    if not hub_id:
        raise UserError("this source has no hub dataset: pass --from PATH")
    local = Path(hub_id)
    if local.is_dir():
        if revision:
            raise UserError(f"--revision applies to hub datasets; {hub_id} is a local directory, read as it is "
                            f"and fingerprinted by content")
        return HubInput(hub_id, None, split_files(local, split))
    if revision and COMMIT.fullmatch(revision):
        return HubInput(hub_id, revision)
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return HubInput(hub_id, cached_commit(hub_id, revision or "main"))
    from huggingface_hub import HfApi

    try:
        return HubInput(hub_id, HfApi().dataset_info(hub_id, revision=revision).sha)
    except Exception as exc:  # network, auth, unknown revision: all one line
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot resolve {hub_id}@{revision or 'main'} on the hub: {first[:160]}; "
                        f"pass --revision COMMIT or --from PATH") from None


def cached_commit(hub_id: str, revision: str) -> str | None:
    """The commit the local hub cache holds for ``revision`` (``refs/<revision>``), if any."""
    from huggingface_hub import constants

    cache = Path(os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE)
    ref = cache / f"datasets--{hub_id.replace('/', '--')}" / "refs" / revision
    try:
        commit = ref.read_text().strip()
    except OSError:
        return None
    return commit if COMMIT.fullmatch(commit) else None


def split_files(repo: Path, split: str) -> list[Path]:
    """The data files of ``split`` in a local dataset repository, by ``datasets``' naming rules."""
    from datasets.data_files import DataFilesDict, get_data_patterns

    from corpus.loading import SUFFIXES

    try:
        found = DataFilesDict.from_patterns(get_data_patterns(str(repo)), base_path=str(repo))
    except Exception as exc:  # datasets raises EmptyDatasetError and friends
        raise UserError(f"{repo}: no dataset files found ({str(exc).splitlines()[0][:120]})") from None
    for name, paths in found.items():
        if str(name) == split:
            files = sorted(Path(p) for p in paths if str(p).endswith(SUFFIXES))
            if files:
                return files
    raise UserError(f"{repo}: no files of split {split!r} (found splits: {', '.join(map(str, found)) or 'none'})")
