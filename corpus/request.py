"""One build, described as a typed, validated, serialisable value: :class:`BuildRequest`.

The CLI parses argv into it, :func:`corpus.api.build_source` makes it from keyword arguments, the
mixer makes it from a manifest's ``build`` table; :func:`corpus.build.identify_version` and
:func:`corpus.build.build_version` take it. Nobody goes through flag strings or ``SystemExit``, and
a request can be written as JSON and run elsewhere (a Ray driver, a queued job).

The common options are fields; the quality steps' and each source's own options live in
``options`` under their Python names (``strip_calculator``, ``near_dedup``, ``count`` ...). Their
names, defaults, types and choices are declared once, by the ``add_arguments`` hooks the CLI shows
in ``--help``: :func:`option_specs` reads those declarations as a schema (no argv is parsed).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from corpus.errors import UserError

EXECUTORS = ("local", "ray")

# the options every source has (fields of BuildRequest); everything else is a source's or a
# quality step's own option and lives in BuildRequest.options
COMMON = ("source", "inputs", "data_dir", "tokenizer", "split", "revision", "hub_dataset", "limit",
          "special_tokens", "max_seq_len", "val_ratio", "seed", "workers", "threads", "batch_size",
          "max_bad_ratio", "quiet", "timings", "rebuild", "role", "executor", "ray_address", "task_records")


@dataclass(frozen=True)
class BuildRequest:
    """Everything a build needs to know, nothing it computes (the version id is derived from it)."""

    source: str
    inputs: tuple[str, ...] | None = None  # files, globs, directories; None: the hub or a generator
    data_dir: str | None = None  # None: $HRM_DATA_DIR or ./data
    tokenizer: str | None = None  # None: the data root's only tokenizer
    split: str = "train"
    revision: str | None = None
    hub_dataset: str | None = None
    limit: int | None = None
    special_tokens: str | None = None
    max_seq_len: int = 512
    val_ratio: float = 0.01
    seed: int = 0
    workers: int = 1  # local processes, or the CPUs of a Ray cluster started for the build
    threads: int | None = None  # tokenizer threads per process (None: the CPUs shared among workers)
    batch_size: int = 8192
    max_bad_ratio: float = 0.01
    quiet: bool = False
    timings: str | None = None
    rebuild: bool = False
    role: str | None = None  # train | eval (None: the source's)
    executor: str = "local"  # who runs the tasks: local processes or Ray (the bytes do not depend on it)
    ray_address: str | None = None  # join this Ray cluster (None: start a local one)
    task_records: int | None = None  # records per task (None: the default); enters the id when set
    options: Mapping[str, Any] = field(default_factory=dict)  # quality steps' and the source's own

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def create(cls, source: str, inputs: str | Path | Sequence[str | Path] | None = None, **kwargs: Any
               ) -> "BuildRequest":
        """A validated request from keyword arguments (the API's and the mixer's way in): common
        options by name, every other name checked against the source's declared options, their
        defaults filled in."""
        if isinstance(inputs, (str, Path)):
            inputs = [inputs]
        common = {k: kwargs.pop(k) for k in list(kwargs) if k in COMMON}
        given = dict(kwargs.pop("options", None) or {})
        given.update(kwargs)
        for name in ("inputs", "source"):
            if name in common:
                raise UserError(f"corpus.build: {name} is given twice")
        if common.get("data_dir") is not None:
            common["data_dir"] = str(common["data_dir"])
        for name in ("tokenizer", "timings"):
            if common.get(name) is not None:
                common[name] = str(common[name])
        request = cls(source=str(source), inputs=None if inputs is None else tuple(map(str, inputs)),
                      options=resolve_options(str(source), given), **common)
        request.validate()
        return request

    @classmethod
    def from_namespace(cls, args: Any) -> "BuildRequest":
        """The CLI's parsed argv (``corpus.build.parse_args``) as a request."""
        values = vars(args)
        if values.get("overlong") is not None:
            raise UserError("--overlong is no longer a build option: examples are stored whole and the mix manifest "
                            "says what a row longer than the run's max_seq_len becomes ([data] or a source's "
                            "overlong = \"skip\" | \"cut_target\" | \"truncate\"; docs/mixing.md)")
        specs = option_specs(values["source_cls"])
        common = {k: values.get(k) for k in COMMON if k in values}
        if common.get("inputs") is not None:
            common["inputs"] = tuple(common["inputs"])
        options = {name: _plain(values[name]) for name in specs if name in values}
        request = cls(options=options, **{k: v for k, v in common.items() if v is not None or k in _NULLABLE})
        request.validate()
        return request

    def replace(self, **changes: Any) -> "BuildRequest":
        request = replace(self, **changes)
        request.validate()
        return request

    # -- checks ------------------------------------------------------------------------------

    def validate(self) -> None:
        """One-line errors for a request no build could run (ranges as the CLI checks them)."""
        from corpus.flags import check_build_flags, check_range

        if not isinstance(self.source, str) or not self.source:
            raise UserError("corpus.build: source must be a source name (see python -m corpus.build --help)")
        if self.inputs is not None and (not isinstance(self.inputs, tuple)
                                        or not all(isinstance(p, str) for p in self.inputs) or not self.inputs):
            raise UserError(f"corpus.build {self.source}: inputs must be one or more paths, not {self.inputs!r}")
        for name, kind in (("limit", int), ("max_seq_len", int), ("seed", int), ("workers", int), ("threads", int),
                           ("batch_size", int), ("task_records", int), ("val_ratio", float),
                           ("max_bad_ratio", float)):
            value = getattr(self, name)
            ok = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))
            if not ok or (kind is int and value is not None and value != int(value)):
                raise UserError(f"corpus.build {self.source}: {name} must be a{'n integer' if kind is int else ' number'}"
                                f", not {value!r}")
        for name in ("max_seq_len", "workers", "batch_size", "seed"):
            if getattr(self, name) is None:
                raise UserError(f"corpus.build {self.source}: {name} must be given")
        check_build_flags(_Flags(self))
        check_range("--task-records", self.task_records, 1, 1 << 30)
        if self.executor not in EXECUTORS:
            raise UserError(f"--executor {self.executor!r}: use one of {', '.join(EXECUTORS)}")
        if self.ray_address is not None and self.executor != "ray":
            raise UserError("--ray-address joins a Ray cluster: give it with --executor ray")
        if self.options.get("name"):
            _check_source_name(self.options["name"])
        if self.role not in (None, "train", "eval"):
            raise UserError(f"--role {self.role!r}: use train or eval")

    # -- serialisation -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["inputs"] = list(self.inputs) if self.inputs is not None else None
        out["options"] = {k: _plain(v) for k, v in sorted(self.options.items())}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "BuildRequest":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"build request: unknown field(s) {', '.join(unknown)}")
        values = dict(data)
        if values.get("inputs") is not None:
            values["inputs"] = tuple(values["inputs"])
        values["options"] = resolve_options(values["source"], dict(values.get("options") or {}))
        request = cls(**values)
        request.validate()
        return request

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "BuildRequest":
        return cls.from_dict(json.loads(text))

    # -- what the build's parts read ---------------------------------------------------------

    def settings(self):
        """A fresh, mutable attribute view of this request (``.split``, ``.strip_calculator``,
        ``.source_cls`` ...): what sources and quality steps read; the build records on it what
        it decides (threads, an evaluation set's split) without touching the request."""
        from types import SimpleNamespace

        from corpus.sources import get_source

        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "options"}
        values["inputs"] = list(self.inputs) if self.inputs is not None else None
        values["overlong"] = None
        ns = SimpleNamespace(**values, **dict(self.options))
        ns.source_cls = get_source(self.source)
        if self.options.get("name"):  # a generic source registered under the user's own name
            ns.source = self.options["name"]
        return ns


_NULLABLE = ("inputs", "data_dir", "tokenizer", "revision", "hub_dataset", "limit", "special_tokens", "threads",
             "timings", "role", "ray_address", "task_records")


def _check_source_name(name: str) -> None:
    import re

    from corpus.sources import source_names

    if not isinstance(name, str) or not re.fullmatch(r"[a-z0-9][a-z0-9_.:-]{0,63}", name):
        raise UserError(f"--name {name!r}: use 1-64 lowercase letters, digits and _ . : - (starting with a letter or digit)")
    if name in source_names():
        raise UserError(f"--name {name!r} is a built-in source; pick another name for these records")


class _Flags:
    """The request's common options under the names ``corpus.flags.check_build_flags`` reads
    (source options are checked by :func:`resolve_options`)."""

    def __init__(self, request: BuildRequest):
        self.__dict__.update({f.name: getattr(request, f.name) for f in fields(request)})
        self.__dict__.update(request.options)

    def __getattr__(self, name: str):
        return None


def option_specs(source_cls: type) -> dict[str, Any]:
    """The options a build of ``source_cls`` takes beyond the common ones: ``{python name:
    argparse action}`` as the quality steps and the source declare them (one declaration for
    ``--help``, the CLI and this schema)."""
    import argparse

    from corpus.quality import decontaminate, eval_guard, near_dedup

    parser = argparse.ArgumentParser(add_help=False)
    decontaminate.add_arguments(parser)
    near_dedup.add_arguments(parser)
    eval_guard.add_arguments(parser)
    source_cls.add_arguments(parser)
    return {a.dest: a for a in parser._actions if a.dest not in COMMON}


def resolve_options(source: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """``given`` checked against the source's declared options (unknown names, types, choices:
    one line naming the option), with every other option at its declared default."""
    import argparse

    from corpus.sources import get_source

    cls = get_source(source)
    specs = option_specs(cls)
    unknown = sorted(set(given) - set(specs))
    if unknown:
        import difflib

        close = difflib.get_close_matches(unknown[0], COMMON[1:] + tuple(specs), n=1)
        hint = f"did you mean {close[0]}?" if close else "python -m corpus.build " + source + " --help lists them"
        raise UserError(f"corpus.build {source}: unknown option {unknown[0]!r} ({hint})")
    out: dict[str, Any] = {}
    for name, action in sorted(specs.items()):
        if name not in given:
            out[name] = _plain(action.default)
            continue
        value = given[name]
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            if not isinstance(value, bool):
                raise UserError(f"corpus.build {source}: option {name} is true or false, not {value!r}")
            out[name] = value
            continue
        if value is None:
            out[name] = None
            continue
        many = action.nargs in ("+", "*") or isinstance(action.nargs, int)
        values = list(value) if many and isinstance(value, (list, tuple)) else value
        if many and not isinstance(values, list):
            values = [values]
        try:
            converted = [_convert(action, v) for v in values] if many else _convert(action, values)
        except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
            raise UserError(f"corpus.build {source}: option {name} = {value!r}: {exc}") from None
        for v in converted if many else [converted]:
            if action.choices is not None and v not in action.choices:
                raise UserError(f"corpus.build {source}: option {name} = {v!r}: choose from "
                                f"{', '.join(map(str, action.choices))}")
        out[name] = _plain(converted)
    return out


def _convert(action, value: Any) -> Any:
    """One option value as its declared type makes it (a number stays a number; a string is
    converted as the CLI would convert it)."""
    kind = action.type
    if kind is None:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise TypeError(f"expected text, got {type(value).__name__}")
        return str(value)
    if kind in (int, float):
        if isinstance(value, bool):
            raise TypeError("expected a number, got a boolean")
        number = kind(value)
        if kind is int and isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
            raise ValueError("expected an integer")
        return number
    if isinstance(value, (list, tuple)):  # already the parsed form (e.g. synthetic tiers)
        return value
    return kind(str(value))


def _plain(value: Any) -> Any:
    """JSON-friendly: paths as text, tuples and sets as lists."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(v) for v in value)
    return value


def as_flags(options: Mapping[str, Any]) -> list[str]:
    """``{"max_seq_len": 1024, "require_images": True}`` → ``--max-seq-len 1024 --require-images``
    (False/None are left out, a list gives several values): options shown as the command a user
    would type (messages only; builds take the request)."""
    argv: list[str] = []
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is True:
            argv.append(flag)
        elif value is False or value is None:
            continue
        elif isinstance(value, (list, tuple)):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    return argv
