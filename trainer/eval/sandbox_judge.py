"""The judge: a code verdict decided in a process the evaluated program cannot reach.

    sandbox leader (judge, B)                          forked child (program, A)
    ─────────────────────────                          ─────────────────────────
    reads the tests from an fd A never held            closes that fd and the verdict fd
    non-dumpable: no ptrace, no /proc/B/{mem,fd}       seccomp: no ptrace/process_vm_*/pidfd_getfd
    exec(context)  (HumanEval: the prompt)             exec(program); exec(tail) (MBPP setup)
    exec(checks)   asserts run HERE, on plain data ◄── hello: the program's names (plain or refs)
      candidate(args) ──── request (plain data) ─────► call the real function
                     ◄─── reply (plain data or ref) ── encode the result (exact types only)
    verdict written on the report fd (only B has it)

The program's process can do anything to its own interpreter (builtins, tracing, frames, exit
paths, its end of the pipes): all it can change is the *data* it replies with. Replies are
decoded by the judge into fresh ``int``/``float``/``str``/``list``/``tuple``/``dict``/``set``/...
objects of the judge's own types, so no program object crosses and no ``__eq__`` of the
program's runs in the judge; anything else becomes an opaque :class:`Remote` handle, equal only
to itself. To pass, the program has to reply with the right values: which is solving the task.

Messages are one JSON line each, at most ``MAX_MESSAGE`` bytes. This module is loaded by
``sandbox_child`` from its path (the child runs ``python -I``): stdlib only, no side effects.
"""

from __future__ import annotations

import builtins
import json
import os
import sys

MAX_MESSAGE = 16 << 20  # bytes per message (a reply with a huge list is an error, not a hang)
MAX_ITEMS = 100_000  # items taken from an iterator the program returns
NON_PASS = ("failed", "error", "memory", "blocked", "exited", "timeout", "killed")
# Names the judge never imports for a program, whatever it calls them (side effects on import).
_NO_IMPORT = frozenset({"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "webbrowser"})


class ProtocolError(Exception):
    """The program's process sent something that is not a well-formed message."""


class ProgramDied(Exception):
    """The program's process ended while the judge waited for a reply."""


# --- plain data ------------------------------------------------------------------------------


def encode(value, ref=None, depth: int = 0):
    """A JSON-able form of ``value`` from plain types only; ``ref(obj)`` handles anything else."""
    if depth > 200:
        raise ValueError("value nested deeper than 200 levels")
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        return value if abs(value) < (1 << 53) else {"t": "int", "v": format(value, "x")}
    if t is float:
        return {"t": "float", "v": value.hex()}
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return encode(int.__index__(value), ref, depth)
    if isinstance(value, float):
        return encode(float.__float__(value), ref, depth)
    if isinstance(value, str):
        return str.__str__(value)
    d = depth + 1
    if isinstance(value, list):
        return {"t": "list", "v": [encode(v, ref, d) for v in list.__iter__(value)]}
    if isinstance(value, tuple):
        return {"t": "tuple", "v": [encode(v, ref, d) for v in tuple.__iter__(value)]}
    if isinstance(value, (set, frozenset)):
        return {"t": "frozenset" if isinstance(value, frozenset) else "set", "v": [encode(v, ref, d) for v in value]}
    if isinstance(value, dict):
        return {"t": "dict", "v": [[encode(k, ref, d), encode(v, ref, d)] for k, v in dict.items(value)]}
    if isinstance(value, (bytes, bytearray)):
        return {"t": type(value).__name__ if t in (bytes, bytearray) else "bytes", "v": bytes(value).hex()}
    if isinstance(value, complex):
        return {"t": "complex", "v": [encode(value.real, ref, d), encode(value.imag, ref, d)]}
    if t is range:
        return {"t": "range", "v": [value.start, value.stop, value.step]}
    if t.__module__ == "fractions" and t.__name__ == "Fraction":
        return {"t": "fraction", "v": str(value)}
    if t.__module__ == "decimal" and t.__name__ == "Decimal":
        return {"t": "decimal", "v": str(value)}
    if type(value).__name__ == "module":
        return {"t": "module", "v": value.__name__}
    if hasattr(t, "__next__") and hasattr(t, "__iter__") and t.__module__ == "builtins":
        items = []
        for item in value:
            if len(items) >= MAX_ITEMS:
                raise ValueError(f"an iterator of more than {MAX_ITEMS} items")
            items.append(encode(item, ref, d))
        return {"t": "iter", "v": items}
    if ref is None:
        raise TypeError(f"a {t.__name__} cannot be sent to the program (plain data only)")
    return ref(value)


def decode(data, resolve, depth: int = 0):
    """Build fresh plain objects from :func:`encode`'s form; ``resolve(tagged)`` makes refs."""
    if depth > 210:
        raise ProtocolError("value nested too deep")
    if data is None or type(data) in (bool, int, float, str):
        return data
    if type(data) is not dict:
        raise ProtocolError(f"unexpected {type(data).__name__} in a message")
    tag, v = data.get("t"), data.get("v")
    d = depth + 1
    if tag == "int":
        return int(v, 16)
    if tag == "float":
        return float.fromhex(v)
    if tag in ("list", "iter"):
        items = [decode(x, resolve, d) for x in v]
        return items if tag == "list" else iter(items)
    if tag == "tuple":
        return tuple(decode(x, resolve, d) for x in v)
    if tag == "set":
        return {decode(x, resolve, d) for x in v}
    if tag == "frozenset":
        return frozenset(decode(x, resolve, d) for x in v)
    if tag == "dict":
        return {decode(k, resolve, d): decode(x, resolve, d) for k, x in v}
    if tag == "bytes":
        return bytes.fromhex(v)
    if tag == "bytearray":
        return bytearray.fromhex(v)
    if tag == "complex":
        return complex(decode(v[0], resolve, d), decode(v[1], resolve, d))
    if tag == "range":
        return range(int(v[0]), int(v[1]), int(v[2]))
    if tag == "fraction":
        from fractions import Fraction

        return Fraction(str(v))
    if tag == "decimal":
        from decimal import Decimal

        return Decimal(str(v))
    if tag in ("ref", "module"):
        return resolve(data)
    raise ProtocolError(f"unknown tag {tag!r}")


class _Lines:
    """Length-capped JSON lines over a pipe."""

    def __init__(self, rfd: int, wfd: int):
        self.reader = os.fdopen(rfd, "rb", buffering=1 << 16)
        self.wfd = wfd

    def send(self, message) -> None:
        data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        view = memoryview(data)
        while view:
            view = view[os.write(self.wfd, view):]

    def receive(self):
        line = self.reader.readline(MAX_MESSAGE + 1)
        if not line:
            raise ProgramDied()
        if len(line) > MAX_MESSAGE or not line.endswith(b"\n"):
            raise ProtocolError(f"a message over {MAX_MESSAGE} bytes")
        try:
            return json.loads(line)
        except ValueError as exc:
            raise ProtocolError(f"not a message: {exc}") from None


# --- the program's side (untrusted process) --------------------------------------------------


def serve(namespace: dict, rfd: int, wfd: int) -> None:
    """Send the program's names, then answer the judge's requests until it hangs up."""
    objects: list = []

    def ref(obj):
        objects.append(obj)
        return {"t": "ref", "id": len(objects) - 1, "type": type(obj).__name__, "callable": callable(obj)}

    def resolve(tagged):
        if tagged.get("t") == "module":
            raise ProtocolError("modules are not sent to the program")
        return objects[int(tagged["id"])]

    link = _Lines(rfd, wfd)
    names = {}
    for name, value in list(namespace.items()):
        if name.startswith("__"):
            continue
        try:
            names[name] = encode(value, ref)
        except (TypeError, ValueError, RecursionError):
            names[name] = ref(value)
    link.send({"hello": names})
    while True:
        try:
            request = link.receive()
        except ProgramDied:
            return
        try:
            target = decode(request["target"], resolve)
            op = request["op"]
            if op == "call":
                args = [decode(a, resolve) for a in request["args"]]
                kwargs = {k: decode(v, resolve) for k, v in request["kwargs"].items()}
                result = target(*args, **kwargs)
                after = [encode(a, ref) if isinstance(a, (list, dict, set)) else None for a in args]
                reply = {"ok": encode(result, ref), "args": after}
            elif op == "getattr":
                reply = {"ok": encode(getattr(target, request["name"]), ref)}
            elif op == "list":
                reply = {"ok": encode(list(target), ref)}
            elif op == "len":
                reply = {"ok": len(target)}
            elif op == "bool":
                reply = {"ok": bool(target)}
            elif op == "str":
                reply = {"ok": str(target)}
            else:
                raise ProtocolError(f"unknown op {op!r}")
        except SystemExit as exc:
            reply = {"exit": f"program called exit({exc.code!r}) inside a call"}
        except BaseException as exc:  # noqa: BLE001 - the program's exception is its answer
            reply = {"raise": [type(exc).__name__, str(exc)[:500]]}
        link.send(reply)


# --- the judge's side (trusted process) ------------------------------------------------------


class RemoteRaised(Exception):
    """The program raised inside a call the tests made."""

    def __init__(self, name: str, message: str):
        super().__init__(f"{name}: {message}" if message else name)
        self.name = name


class _Exited(Exception):
    pass


class Remote:
    """A program object the judge holds only by number: calls and attribute reads go back to the
    program, comparisons never do (a Remote equals only itself)."""

    __slots__ = ("_link", "_id", "_type", "_callable")

    def __init__(self, link, tagged: dict):
        object.__setattr__(self, "_link", link)
        object.__setattr__(self, "_id", int(tagged["id"]))
        object.__setattr__(self, "_type", str(tagged.get("type", "object"))[:100])
        object.__setattr__(self, "_callable", bool(tagged.get("callable")))

    def _ask(self, op: str, **fields):
        return self._link.request(op, self, **fields)

    def __call__(self, *args, **kwargs):
        return self._link.call(self, args, kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._ask("getattr", name=name)

    def __iter__(self):
        return iter(self._ask("list"))

    def __len__(self):
        value = self._ask("len")
        if type(value) is not int:
            raise TypeError("len() of a program object is not an int")
        return value

    def __bool__(self):
        return self._ask("bool") is True

    def __str__(self):
        return str(self._ask("str"))

    def __repr__(self):
        return f"<program {self._type} #{self._id}>"

    def __eq__(self, other):
        return isinstance(other, Remote) and other._id == self._id

    def __ne__(self, other):
        return not self.__eq__(other)

    def __hash__(self):
        return hash(("remote", self._id))


class _JudgeLink:
    def __init__(self, rfd: int, wfd: int):
        self.lines = _Lines(rfd, wfd)
        self.modules: dict = {}

    def resolve(self, tagged: dict):
        if tagged.get("t") == "module":
            return judge_module(str(tagged.get("v")))
        return Remote(self, tagged)

    def _out(self, value):
        return encode(value, lambda obj: self._ref_out(obj))

    @staticmethod
    def _ref_out(obj):
        if isinstance(obj, Remote):
            return {"t": "ref", "id": obj._id}
        raise TypeError(f"a {type(obj).__name__} of the tests cannot be passed to the program (plain data only)")

    def _reply(self):
        reply = self.lines.receive()
        if type(reply) is not dict:
            raise ProtocolError("a reply that is not an object")
        if "raise" in reply:
            name, message = reply["raise"]
            raise RemoteRaised(str(name)[:100], str(message)[:500])
        if "exit" in reply:
            raise _Exited(str(reply["exit"])[:300])
        if "ok" not in reply:
            raise ProtocolError("a reply without a value")
        return reply

    def request(self, op: str, target: Remote, **fields):
        self.lines.send({"op": op, "target": {"t": "ref", "id": target._id}, **fields})
        return decode(self._reply()["ok"], self.resolve)

    def call(self, target: Remote, args: tuple, kwargs: dict):
        self.lines.send({"op": "call", "target": {"t": "ref", "id": target._id},
                         "args": [self._out(a) for a in args],
                         "kwargs": {str(k): self._out(v) for k, v in kwargs.items()}})
        reply = self._reply()
        result = decode(reply["ok"], self.resolve)
        after = reply.get("args") or []
        for arg, changed in zip(args, after):  # in-place changes the program made to a list/dict/set
            if changed is None or type(arg) not in (list, dict, set):
                continue
            new = decode(changed, self.resolve)
            if type(new) is type(arg) and new != arg:
                arg.clear()
                arg.update(new) if type(arg) is not list else arg.extend(new)
        return result


def judge_module(name: str):
    """The judge's own copy of a standard-library module (never the program's object)."""
    top = name.split(".", 1)[0]
    if top not in sys.stdlib_module_names or top in _NO_IMPORT:
        raise ProtocolError(f"the program's module {name!r} is not a standard-library module")
    import importlib

    return importlib.import_module(name)


def _global_names(source: str) -> set[str]:
    import ast

    return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}


def judge(spec: dict, rfd: int, wfd: int, wait_program) -> tuple[str, str]:
    """Run the checks against the program's names; returns (status, detail).

    ``spec``: ``context`` (trusted code run first), ``checks`` (the tests), ``bind`` (judge name →
    program name, or None: every name the checks use that is neither a builtin, a standard-library
    module, nor defined by the context). ``wait_program()`` → (status, detail) once the program's
    process is gone.
    """
    link = _JudgeLink(rfd, wfd)
    try:
        hello = link.lines.receive()
        if type(hello) is not dict:
            raise ProtocolError("a greeting that is not an object")
        if "load" in hello:  # the program failed before the tests could start
            status, detail = hello["load"]
            return (status if status in NON_PASS else "error"), str(detail)[:300]
        if "exit" in hello:
            return "exited", str(hello["exit"])[:300]
        names = hello.get("hello")
        if type(names) is not dict:
            raise ProtocolError("a greeting without names")
        namespace: dict = {"__name__": "__judge__", "__builtins__": builtins}
        exec(compile(spec.get("context") or "", "<context>", "exec"), namespace)
        trusted = set(namespace)
        given = spec.get("bind")
        bind = dict(given or {})
        for name in sorted(_global_names(spec["checks"])):
            if name in trusted or name in bind or hasattr(builtins, name):
                continue
            if name in sys.stdlib_module_names and name not in _NO_IMPORT:
                namespace[name] = judge_module(name)  # the tests' ``math`` is the judge's own
            elif given is None and name in names:
                bind[name] = name
        for mine, theirs in bind.items():
            if theirs not in names:
                return "error", f"NameError: the program defines no {theirs!r}"
            namespace[mine] = decode(names[theirs], link.resolve)
        exec(compile(spec["checks"], "<checks>", "exec"), namespace)
    except ProgramDied:
        return wait_program()
    except ProtocolError as exc:
        return "error", f"the program's process broke the protocol: {exc}"[:300]
    except RemoteRaised as exc:
        status = {"MemoryError": "memory", "SandboxViolation": "blocked"}.get(exc.name, "error")
        return status, str(exc)[:300]
    except _Exited as exc:
        return "exited", str(exc)
    except AssertionError as exc:
        return "failed", _assert_detail(exc)
    except MemoryError:
        return "memory", "MemoryError in the tests"
    except BaseException as exc:  # noqa: BLE001 - any other failure of the tests is an error
        return "error", f"{type(exc).__name__}: {exc}"[:300]
    return "passed", ""


def _assert_detail(exc: AssertionError) -> str:
    """``AssertionError at <checks> line 7`` (+ its message): where the failing assert is."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<checks>":
            line = tb.tb_lineno
        tb = tb.tb_next
    where = f" at the tests' line {line}" if line else ""
    message = str(exc)
    return (f"AssertionError{where}" + (f": {message}" if message else ""))[:300]
