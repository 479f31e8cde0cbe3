"""A small exact parser and evaluator for arithmetic and polynomial text, shared by checkers.

Accepts what the generators print and what a model plausibly writes: ``3x^2y - 2(x + 1)``,
``(x + 1)(x - 2)``, ``4*x/2``, ``x**2``. Checkers evaluate both the problem text and a candidate
answer with this module, so grading never depends on how the generator computed its answer.

    parse(text) -> Node       evaluate(node, env) -> Fraction       terms(node) -> monomial keys
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Union

Node = tuple  # ("num", Fraction) | ("var", str) | (op, left, right) | ("neg", x) | ("pow", x, int)
Number = Union[int, Fraction]

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|([a-zA-Z])|(\*\*|[-+*/^()]))")
MAX_EXPONENT = 12


def tokenize(text: str) -> list[str]:
    tokens, pos, text = [], 0, text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise ValueError(f"cannot read {text[pos:]!r}")
        tokens.append(m.group(1) or m.group(2) or ("^" if m.group(3) == "**" else m.group(3)))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[str]):
        self.tokens, self.i = tokens, 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        tok = self.peek()
        if tok is None or (expected is not None and tok != expected):
            raise ValueError(f"expected {expected or 'more input'}, got {tok!r}")
        self.i += 1
        return tok

    def expr(self) -> Node:
        node = self.term()
        while self.peek() in ("+", "-"):
            op = "add" if self.take() == "+" else "sub"
            node = (op, node, self.term())
        return node

    def term(self) -> Node:
        node = self.unary()
        while True:
            tok = self.peek()
            if tok in ("*", "/"):
                self.take()
                node = ("mul" if tok == "*" else "div", node, self.unary())
            elif tok == "(" or (tok is not None and tok.isalpha()):
                node = ("mul", node, self.power())  # implicit: 3x, 2(x + 1), (x)(y)
            else:
                return node

    def unary(self) -> Node:
        if self.peek() == "-":
            self.take()
            return ("neg", self.unary())
        if self.peek() == "+":
            self.take()
            return self.unary()
        return self.power()

    def power(self) -> Node:
        base = self.atom()
        if self.peek() == "^":
            self.take()
            tok = self.take()
            if not tok.isdigit() or int(tok) > MAX_EXPONENT:
                raise ValueError(f"exponent must be a small whole number, got {tok!r}")
            return ("pow", base, int(tok))
        return base

    def atom(self) -> Node:
        tok = self.take()
        if tok == "(":
            node = self.expr()
            self.take(")")
            return node
        if tok[0].isdigit():
            return ("num", Fraction(tok))
        if tok.isalpha():
            return ("var", tok)
        raise ValueError(f"unexpected {tok!r}")


def parse(text: str) -> Node:
    parser = _Parser(tokenize(text))
    node = parser.expr()
    if parser.peek() is not None:
        raise ValueError(f"unexpected {parser.peek()!r} in {text!r}")
    return node


def evaluate(node: Node, env: dict[str, Number] | None = None) -> Fraction:
    kind = node[0]
    if kind == "num":
        return node[1]
    if kind == "var":
        if not env or node[1] not in env:
            raise KeyError(f"no value for {node[1]!r}")
        return Fraction(env[node[1]])
    if kind == "neg":
        return -evaluate(node[1], env)
    if kind == "pow":
        return evaluate(node[1], env) ** node[2]
    left, right = evaluate(node[1], env), evaluate(node[2], env)
    if kind == "add":
        return left + right
    if kind == "sub":
        return left - right
    if kind == "mul":
        return left * right
    if kind == "div":
        return left / right
    raise ValueError(f"unknown node {kind!r}")


def variables(node: Node) -> set[str]:
    if node[0] == "var":
        return {node[1]}
    if node[0] == "num":
        return set()
    return set().union(*(variables(child) for child in node[1:] if isinstance(child, tuple)))


def terms(node: Node) -> list[tuple[tuple[str, int], ...]] | None:
    """Monomial keys (sorted (var, exponent) pairs) of each top-level term, or None when a term
    still holds a sum, i.e. the expression is not expanded."""
    if node[0] in ("add", "sub"):
        left, right = terms(node[1]), terms(node[2])
        return None if left is None or right is None else left + right
    if node[0] == "neg":
        return terms(node[1])
    powers: dict[str, int] = {}

    def collect(n: Node, times: int) -> bool:
        if n[0] == "num":
            return True
        if n[0] == "var":
            powers[n[1]] = powers.get(n[1], 0) + times
            return True
        if n[0] == "neg":
            return collect(n[1], times)
        if n[0] == "pow":
            return collect(n[1], times * n[2])
        if n[0] in ("mul", "div"):
            divides_by_number = n[0] == "div" and not variables(n[2])
            return collect(n[1], times) and (n[0] == "mul" or divides_by_number) and collect(n[2], times)
        return False

    if not collect(node, 1):
        return None
    return [tuple(sorted((v, e) for v, e in powers.items() if e))]
