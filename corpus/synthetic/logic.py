"""Propositional formulas: parse, print, rewrite one named rule at a time, compare by truth table.

Printing puts parentheses around every compound operand, so a printed formula parses back the
same whatever precedence a reader assumes. Rewriting applies the first rule that matches at the
outermost-leftmost position until none does; the result is in negation normal form (NNF) with
constants and repeats simplified.
"""

from __future__ import annotations

import itertools
import re
from typing import Callable

Formula = tuple  # ("var", "p") | ("const", bool) | ("not", f) | (op, f, g) with op in BINARY
BINARY = {"and": "&", "or": "|", "imp": "->", "iff": "<->"}
TRUE, FALSE = ("const", True), ("const", False)


def var(name: str) -> Formula:
    return ("var", name)


def neg(f: Formula) -> Formula:
    return ("not", f)


def show(f: Formula, top: bool = True) -> str:
    kind = f[0]
    if kind == "var":
        return f[1]
    if kind == "const":
        return "T" if f[1] else "F"
    if kind == "not":
        return "~" + show(f[1], top=False)
    text = f"{show(f[1], False)} {BINARY[kind]} {show(f[2], False)}"
    return text if top else f"({text})"


# --- parsing ---------------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(<->|<=>|->|=>|[~!&|()]|\band\b|\bor\b|\bnot\b|\bT\b|\bF\b|[a-z])")
_ALIASES = {"<=>": "<->", "=>": "->", "!": "~", "not": "~", "and": "&", "or": "|"}


def parse(text: str) -> Formula:
    """Parse ``~ & | -> <->`` (also ``! and or not => <=>``, ``T``/``F``); & binds tighter than |,
    | tighter than ->, which is right-associative, and <-> loosest."""
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"cannot read {text[pos:]!r}")
        tokens.append(_ALIASES.get(m.group(1), m.group(1)))
        pos = m.end()
    index = 0

    def peek() -> str | None:
        return tokens[index] if index < len(tokens) else None

    def take() -> str:
        nonlocal index
        if index >= len(tokens):
            raise ValueError("formula ends early")
        index += 1
        return tokens[index - 1]

    def level(ops: list[tuple[str, str]], lower: Callable[[], Formula], right_assoc: bool = False) -> Formula:
        node = lower()
        while peek() in dict(ops):
            op = dict(ops)[take()]
            if right_assoc:
                return (op, node, level(ops, lower, True))
            node = (op, node, lower())
        return node

    def iff() -> Formula:
        return level([("<->", "iff")], imp)

    def imp() -> Formula:
        return level([("->", "imp")], disj, right_assoc=True)

    def disj() -> Formula:
        return level([("|", "or")], conj)

    def conj() -> Formula:
        return level([("&", "and")], unary)

    def unary() -> Formula:
        tok = take()
        if tok == "~":
            return neg(unary())
        if tok == "(":
            node = iff()
            if take() != ")":
                raise ValueError("missing )")
            return node
        if tok in ("T", "F"):
            return TRUE if tok == "T" else FALSE
        if len(tok) == 1 and tok.isalpha():
            return var(tok)
        raise ValueError(f"unexpected {tok!r}")

    node = iff()
    if peek() is not None:
        raise ValueError(f"unexpected {peek()!r}")
    return node


# --- semantics -------------------------------------------------------------------------------

def atoms(f: Formula) -> set[str]:
    if f[0] == "var":
        return {f[1]}
    if f[0] == "const":
        return set()
    return set().union(*(atoms(g) for g in f[1:]))


def value(f: Formula, env: dict[str, bool]) -> bool:
    kind = f[0]
    if kind == "var":
        return env[f[1]]
    if kind == "const":
        return f[1]
    if kind == "not":
        return not value(f[1], env)
    a, b = value(f[1], env), value(f[2], env)
    return {"and": a and b, "or": a or b, "imp": (not a) or b, "iff": a == b}[kind]


MAX_LETTERS = 12  # 4096 rows; more letters in a candidate answer is not worth a truth table


def equivalent(f: Formula, g: Formula) -> bool:
    """Truth-table equivalence over the union of both formulas' letters."""
    names = sorted(atoms(f) | atoms(g))
    if len(names) > MAX_LETTERS:
        raise ValueError(f"{len(names)} letters is more than {MAX_LETTERS}")
    for row in itertools.product((False, True), repeat=len(names)):
        env = dict(zip(names, row))
        if value(f, env) != value(g, env):
            return False
    return True


def is_nnf(f: Formula) -> bool:
    """Only &, | and negations applied directly to letters."""
    if f[0] in ("var", "const"):
        return True
    if f[0] == "not":
        return f[1][0] == "var"
    return f[0] in ("and", "or") and is_nnf(f[1]) and is_nnf(f[2])


def size(f: Formula) -> int:
    return 1 if f[0] in ("var", "const") else 1 + sum(size(g) for g in f[1:])


# --- rewriting -------------------------------------------------------------------------------

def _complement(a: Formula, b: Formula) -> bool:
    return a == neg(b) or b == neg(a)


def _absorbs(a: Formula, b: Formula, inner: str) -> bool:
    return b[0] == inner and a in (b[1], b[2])


def rewrite_once(f: Formula) -> tuple[str, Formula] | None:
    """(rule name, result) of the first rule that matches ``f`` itself, or None."""
    kind = f[0]
    if kind == "iff":
        return "biconditional elimination", ("and", ("imp", f[1], f[2]), ("imp", f[2], f[1]))
    if kind == "imp":
        return "implication elimination", ("or", neg(f[1]), f[2])
    if kind == "not":
        inner = f[1]
        if inner[0] == "not":
            return "double negation", inner[1]
        if inner[0] == "and":
            return "De Morgan", ("or", neg(inner[1]), neg(inner[2]))
        if inner[0] == "or":
            return "De Morgan", ("and", neg(inner[1]), neg(inner[2]))
        if inner[0] == "const":
            return "negate constant", ("const", not inner[1])
        return None
    if kind in ("and", "or"):
        a, b = f[1], f[2]
        unit, zero = (TRUE, FALSE) if kind == "and" else (FALSE, TRUE)
        if _complement(a, b):
            return "complement", zero
        if a == b:
            return "idempotence", a
        if unit in (a, b):
            return "identity", b if a == unit else a
        if zero in (a, b):
            return "domination", zero
        other = "or" if kind == "and" else "and"
        if _absorbs(a, b, other):
            return "absorption", a
        if _absorbs(b, a, other):
            return "absorption", b
    return None


def rewrite_step(f: Formula) -> tuple[str, Formula] | None:
    """Apply the first matching rule at the outermost-leftmost position."""
    hit = rewrite_once(f)
    if hit:
        return hit
    for i in range(1, len(f)):
        if isinstance(f[i], tuple):
            sub = rewrite_step(f[i])
            if sub:
                rule, new = sub
                return rule, f[:i] + (new,) + f[i + 1:]
    return None


def derive(f: Formula, limit: int = 64) -> list[tuple[str, Formula]]:
    """Every (rule, formula) step from ``f`` to its simplified NNF; ValueError past ``limit``
    steps (biconditionals can blow a formula up)."""
    steps = []
    while len(steps) < limit:
        hit = rewrite_step(f)
        if hit is None:
            return steps
        f = hit[1]
        steps.append((hit[0], f))
    raise ValueError(f"derivation longer than {limit} steps")
