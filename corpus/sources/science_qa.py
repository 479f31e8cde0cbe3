"""ScienceQA: multiple-choice science questions with lectures, explanations and optional images.

Two layouts, recognised from ``--from``:

* original: ``problems.json`` (pid → problem) beside ``pid_splits.json`` (split → pids) and
  ``images/<split>/<pid>/<problem.image>``. A split's problems are the pids ``pid_splits.json``
  lists for it that ``problems.json`` holds (a subset file is fine); without that file, each
  problem's own ``split`` field decides. ``--split`` takes ``train``, ``val`` (= ``validation``),
  ``test``, any other key of ``pid_splits.json`` (``minitrain`` ...) or ``all``.
* Hugging Face parquet (``derek-thomas/ScienceQA``, the hub default): ``{train,validation,test}-*.parquet``
  with an ``image`` column ``{bytes, path}``. Rows have no pid, so the id is a content hash.

Prompt = question, lettered options, the context (``hint``) and, with ``--captions``, the image
caption; target = lecture + solution + ``The answer is (X).``. An image is decoded, verified,
flattened to RGB and stored as PNG with its longest side ≤ ``--max-image-side``. A referenced
image that is missing or undecodable leaves the image null and is counted (``--require-images``
quarantines the problem instead). Features: grade (0 = unknown), choices, words of each part,
image flags; tier by grade band.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Iterator

from corpus.errors import BadRecord, UserError
from corpus.sources.base import Example, RawRecord, Source, threshold_rule
from corpus.sources.fields import require
from corpus.sources.images import DEFAULT_MAX_SIDE, ImageError, normalize_image

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
ALIASES = {"validation": "val", "dev": "val"}
HF_SPLITS = {"train": "train", "val": "validation", "test": "test"}
EVAL_SPLITS = {"test", "minitest", "all"}
GRADE = re.compile(r"^(?:grade)?\s*(\d{1,2})$", re.IGNORECASE)
HF_FILE_SPLIT = re.compile(r"^(train|validation|val|test)(?:[-_.]|$)")


def canonical_split(split: str) -> str:
    return ALIASES.get(split, split)


class ScienceQA(Source):
    name = "science_qa"
    benchmark = True
    hub_id = "derek-thomas/ScienceQA"
    has_images = True
    tier_rule = threshold_rule(
        "scienceqa-grade", 1, "grade", [3, 6, 9],
        "tier = 0 for grades 1-2 (or unknown), 1 for 3-5, 2 for 6-8, 3 for 9-12",
    )

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--captions", type=Path, metavar="JSON",
                            help="captions.json (pid → caption, or ScienceQA's {'captions': {...}}): "
                                 "adds the image caption to the prompt")
        parser.add_argument("--require-images", action="store_true",
                            help="quarantine problems whose image is missing or undecodable (default: keep, "
                                 "image null, counted)")
        parser.add_argument("--max-image-side", type=int, default=DEFAULT_MAX_SIDE,
                            help=f"longest side of a stored image in pixels (default {DEFAULT_MAX_SIDE})")

    def options(self) -> dict:
        a = self.args
        if a.max_image_side < 1:
            raise UserError(f"--max-image-side must be positive, got {a.max_image_side}")
        captions = None
        if a.captions is not None:
            from corpus.atomic import sha256_file

            self._captions()  # a bad file fails here, once, with one line
            captions = sha256_file(a.captions)
        return {"captions": captions, "require_images": bool(a.require_images), "max_image_side": a.max_image_side,
                "side_files": side_fingerprint(a.inputs) if getattr(a, "inputs", None) else None}

    def is_eval_split(self, split: str) -> bool:
        return canonical_split(split) in EVAL_SPLITS

    # -- reading ------------------------------------------------------------------------------
    def records(self, paths, split, limit) -> Iterator[RawRecord]:
        split = canonical_split(split)
        if paths is None:
            yield from _hub_records(self.hub_id, split, self.hub_revision)
            return
        problems, parquet = input_files(paths)
        for path in problems:
            yield from _original_records(path, split)
        for path in parquet:
            yield from _parquet_records(path, split)

    # -- normalizing --------------------------------------------------------------------------
    def normalize(self, record: RawRecord) -> Example:
        wrapped = record.data
        problem = wrapped["problem"]
        if not isinstance(problem, dict):
            raise BadRecord(f"expected a JSON object, got {type(problem).__name__}")
        question = require(problem, "question").strip()
        choices = _choices(problem)
        answer = require(problem, "answer", int)
        if isinstance(answer, bool) or not 0 <= answer < len(choices):
            raise BadRecord(f"{answer!r} is not an index into {len(choices)} choices", "answer")
        hint, lecture, solution = (_text(problem, f) for f in ("hint", "lecture", "solution"))
        pid = wrapped["pid"]
        caption = self._captions().get(pid, "").strip() if pid is not None else ""
        features: dict[str, int] = {
            "grade": _grade(problem), "choices": len(choices), "question_words": len(question.split()),
            "context_words": len(hint.split()), "lecture_words": len(lecture.split()),
            "solution_words": len(solution.split()), "has_caption": int(bool(caption)),
            "has_image": 0, "image_missing": 0, "image_undecodable": 0,
        }
        ex = Example(native_id=pid if pid is not None else _content_id(problem), prompt="", target="")
        image_ref = self._attach_image(ex, wrapped, features)
        letter = LETTERS[answer]
        lines = [f"Question: {question}", "Options:"] + [f"({LETTERS[i]}) {c}" for i, c in enumerate(choices)]
        if hint:
            lines.append(f"Context: {hint}")
        if caption:
            lines.append(f"Image: {caption}")
        ex.prompt = "\n".join(lines)
        ex.target = "\n\n".join(p for p in (lecture, solution, f"The answer is ({letter}).") if p)
        ex.features = features
        ex.meta = {
            "pid": pid, "split": wrapped["split"], "answer": letter, "answer_index": answer,
            "answer_text": choices[answer], "choices": choices, "grade": problem.get("grade"),
            **{k: problem.get(k) for k in ("subject", "topic", "category", "skill", "task") if k in problem},
            "image_ref": image_ref, "caption": caption or None, "ref": record.ref,
            "lecture_chars": len(lecture),  # the target's leading lecture: shared by many problems
        }
        return ex

    @classmethod
    def identity_texts(cls, prompt: str, target: str, meta: dict) -> list[str]:
        """The question with its options and context, and the solution with its answer: not the
        lecture, which many problems of a topic share word for word (it would make a training
        problem "contain" a test problem that only shares its lecture)."""
        cut = int(meta.get("lecture_chars") or 0)
        return [prompt, target[cut:].lstrip() if 0 < cut <= len(target) else target]

    def _attach_image(self, ex: Example, wrapped: dict, features: dict) -> str | None:
        """Decode the problem's image into ``ex``; returns where it came from (for meta)."""
        data, where = _image_bytes(wrapped)
        if where is None:
            return None
        features["has_image"] = 1
        if data is None:
            if self.args.require_images:
                raise BadRecord(f"image missing: {where} not found", "image")
            self.count("image missing")
            features["image_missing"] = 1
            return where
        try:
            stored = normalize_image(data, self.args.max_image_side)
        except ImageError as exc:
            if self.args.require_images:
                raise BadRecord(f"image undecodable: {where}: {exc}", "image") from None
            self.count("image undecodable")
            features["image_undecodable"] = 1
            return where
        ex.image, ex.image_width, ex.image_height = stored.png, stored.width, stored.height
        return where

    def _captions(self) -> dict[str, str]:
        if "_caption_map" not in self.__dict__:
            self._caption_map = _load_captions(self.args.captions) if self.args.captions else {}
        return self._caption_map


# -- layouts ----------------------------------------------------------------------------------

SIDE_FILES = ("pid_splits.json", "captions.json")


def input_files(paths: list[str]) -> tuple[list[Path], list[Path]]:
    """``--from`` paths → (problems.json files, parquet files).

    ``pid_splits.json`` and ``captions.json`` are side files, never problems; when parquet files
    are given, other JSON files are Hugging Face metadata and are skipped too.
    """
    from corpus.loading import expand_paths

    files = expand_paths(list(paths))
    parquet = [f for f in files if f.name.endswith(".parquet")]
    json_files = [f for f in files if f.name.endswith(".json") and f.name not in SIDE_FILES]
    other = [f for f in files if not f.name.endswith((".json", ".parquet"))]
    if other:
        raise UserError(f"{other[0]}: not a ScienceQA input (problems.json + pid_splits.json + images/, "
                        f"or Hugging Face parquet files)")
    problems = [] if parquet else json_files
    if not problems and not parquet:
        raise UserError(f"no problems.json or parquet files in {', '.join(map(str, paths))}")
    return problems, parquet


def side_fingerprint(paths: list[str]) -> str | None:
    """sha256 over what the original layout reads beside problems.json (pid_splits, images).

    ``--from`` fingerprints only the files it names, but a changed image or split list must
    give a new version id too.
    """
    import hashlib

    from corpus.atomic import sha256_file

    problems, _ = input_files(paths)
    h = hashlib.sha256()
    for root in sorted({p.parent for p in problems}):
        side = [root / "pid_splits.json"] if (root / "pid_splits.json").is_file() else []
        images = root / "images"
        side += sorted(f for f in images.rglob("*") if f.is_file()) if images.is_dir() else []
        for f in side:
            h.update(str(f.relative_to(root)).encode())
            h.update(sha256_file(f).encode())
    return h.hexdigest() if problems else None


def _read_json(path: Path) -> Any:
    import orjson

    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON ({str(exc).split(':')[0]})") from None


def _original_records(problems_path: Path, split: str) -> Iterator[RawRecord]:
    """problems.json (+ pid_splits.json, images/) → one record per problem of ``split``."""
    problems = _read_json(problems_path)
    if problems is None:  # an empty file holds no problems; the build reports "no records"
        return
    if not isinstance(problems, dict):
        raise UserError(f"{problems_path}: expected an object mapping pid → problem, got {type(problems).__name__}")
    root = problems_path.parent
    splits_path = root / "pid_splits.json"
    pid_splits = _read_json(splits_path) if splits_path.is_file() else None
    if pid_splits is not None and not (isinstance(pid_splits, dict)
                                       and all(isinstance(v, list) for v in pid_splits.values())):
        raise UserError(f"{splits_path}: expected an object mapping split → list of pids")
    pid_splits = {canonical_split(k): [str(p) for p in v] for k, v in (pid_splits or {}).items()}
    native = {pid: s for s in ("train", "val", "test") for pid in pid_splits.get(s, [])}

    def split_of(pid: str, problem: Any) -> str | None:
        own = problem.get("split") if isinstance(problem, dict) else None
        return native.get(pid) or (canonical_split(own) if isinstance(own, str) else None)

    if split == "all":
        pids = list(problems)
    elif split in pid_splits:
        pids = [pid for pid in pid_splits[split] if pid in problems]
    else:
        pids = [pid for pid, p in problems.items() if split_of(pid, p) == split]
        if not pids:
            known = sorted(set(pid_splits) | {s for pid, p in problems.items() if (s := split_of(pid, p))})
            raise UserError(f"{problems_path}: no problems in split {split!r} (splits: {', '.join(known)}, all)")
    for pid in pids:
        problem = problems[pid]
        yield RawRecord(f"{problems_path}#{pid}", {
            "problem": problem, "pid": pid, "split": split_of(pid, problem) or (None if split == "all" else split),
            "images": str(root / "images"), "layout": "original",
        })


def _parquet_records(path: Path, split: str) -> Iterator[RawRecord]:
    """A Hugging Face ScienceQA parquet file; its split is read from the file or folder name."""
    match = HF_FILE_SPLIT.match(path.name) or HF_FILE_SPLIT.match(path.parent.name)
    file_split = canonical_split(match.group(1)) if match else None
    if split != "all" and file_split is not None and file_split != split:
        return
    if path.stat().st_size == 0:
        return
    import datasets

    datasets.disable_progress_bars()
    try:
        ds = datasets.load_dataset("parquet", data_files=str(path), split="train")
    except Exception:
        raise UserError(f"cannot read {path}: parquet file is corrupt or unreadable") from None
    yield from _dataset_records(ds, str(path), file_split or (None if split == "all" else split), path.parent)


def _hub_records(hub_id: str, split: str, revision: str | None = None) -> Iterator[RawRecord]:
    import os

    import datasets

    names = list(HF_SPLITS.values()) if split == "all" else [HF_SPLITS.get(split, split)]
    datasets.disable_progress_bars()
    for name in names:
        try:
            ds = datasets.load_dataset(hub_id, split=name, revision=revision)
        except Exception as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            offline = " (offline: HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") == "1" else ""
            raise UserError(f"cannot load {hub_id} split {name} from the hub{offline}: {first[:160]}; "
                            f"pass --from PATH with problems.json or parquet files") from None
        yield from _dataset_records(ds, f"hub:{hub_id}:{name}", canonical_split(name), None)


def _dataset_records(ds, ref: str, split: str | None, base: Path | None) -> Iterator[RawRecord]:
    import datasets

    # decode images ourselves: datasets would stop the whole file at the first corrupt one
    if isinstance(ds.features.get("image"), datasets.Image):
        ds = ds.cast_column("image", datasets.Image(decode=False))
    for i, row in enumerate(ds):
        yield RawRecord(f"{ref}#{i}", {"problem": row, "pid": None, "split": split,
                                       "base": str(base) if base else None, "layout": "hf"})


# -- fields -----------------------------------------------------------------------------------

def _choices(problem: dict) -> list[str]:
    choices = require(problem, "choices", list)
    if len(choices) < 2:
        raise BadRecord(f"needs at least 2 choices, got {len(choices)}", "choices")
    if len(choices) > len(LETTERS):
        raise BadRecord(f"more than {len(LETTERS)} choices", "choices")
    out = []
    for i, choice in enumerate(choices):
        if not isinstance(choice, str):
            raise BadRecord(f"expected text, got {type(choice).__name__}", f"choices[{i}]")
        if not choice.strip():
            raise BadRecord("empty text", f"choices[{i}]")
        out.append(choice.strip())
    return out


def _text(problem: dict, field: str) -> str:
    """An optional text field: absent or null is empty; any other type is a bad record."""
    value = problem.get(field)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRecord(f"expected text, got {type(value).__name__}", field)
    return value.strip()


def _grade(problem: dict) -> int:
    value = problem.get("grade")
    if value is None or value == "":
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 12:
        return value
    match = GRADE.match(value.strip()) if isinstance(value, str) else None
    if not match or not 1 <= int(match.group(1)) <= 12:
        raise BadRecord(f"expected 'grade1'..'grade12', got {value!r}", "grade")
    return int(match.group(1))


def _content_id(problem: dict) -> str:
    """A stable id for rows without a pid: hash of the question, options, context and answer."""
    key = json.dumps([problem.get(k) for k in ("question", "choices", "answer", "hint", "lecture", "solution")],
                     sort_keys=True, ensure_ascii=False, default=str)
    return "h" + hashlib.sha256(key.encode()).hexdigest()[:16]


def _image_bytes(wrapped: dict) -> tuple[bytes | None, str | None]:
    """``(bytes or None if missing, where)``; ``where`` is None when the problem has no image."""
    problem = wrapped["problem"]
    value = problem.get("image")
    if value is None or value == "":
        return None, None
    if wrapped["layout"] == "original":
        if not isinstance(value, str):
            raise BadRecord(f"expected a file name, got {type(value).__name__}", "image")
        if Path(value).name != value or value in (".", ".."):
            raise BadRecord(f"{value!r} is not a plain file name", "image")
        images = Path(wrapped["images"])
        pid = wrapped["pid"]
        splits = [wrapped["split"]] if wrapped["split"] else []
        candidates = [images / s / pid / value for s in dict.fromkeys(splits + ["train", "val", "test"])]
        candidates.append(images / pid / value)
        for candidate in candidates:
            if candidate.is_file():
                return candidate.read_bytes(), str(candidate.relative_to(images.parent))
        return None, str(candidates[0].relative_to(images.parent))
    # Hugging Face layout: {bytes, path} (datasets Image, undecoded) or raw bytes
    if isinstance(value, (bytes, bytearray)):
        return bytes(value), "image"
    if isinstance(value, dict):
        data, path = value.get("bytes"), value.get("path")
        if isinstance(data, (bytes, bytearray)) and data:
            return bytes(data), path or "image"
        if isinstance(path, str) and path:
            base = Path(wrapped["base"]) if wrapped.get("base") else Path.cwd()
            file = path if Path(path).is_absolute() else base / path
            return (Path(file).read_bytes() if Path(file).is_file() else None), path
        return None, "image"
    raise BadRecord(f"expected image bytes or {{bytes, path}}, got {type(value).__name__}", "image")


def _load_captions(path: Path) -> dict[str, str]:
    doc = _read_json(Path(path)) if Path(path).is_file() else None
    if doc is None:
        raise UserError(f"--captions {path}: not found or empty")
    captions = doc.get("captions", doc) if isinstance(doc, dict) else None
    if not isinstance(captions, dict) or not all(isinstance(v, str) for v in captions.values()):
        raise UserError(f"--captions {path}: expected an object mapping pid → caption text")
    return {str(k): v for k, v in captions.items()}
