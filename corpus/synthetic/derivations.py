"""Short symbolic derivations: rewrite an expression one justified step at a time.

Three families share the task; every step names its rule and shows its rewrite (the whole
form after every step for evaluate and logic, after each phase for algebra):

* ``evaluate``: an integer expression, one operation per step, by the order of operations;
* ``algebra``: a polynomial expression, expanded ("distribute", "expand the product") and then
  simplified ("combine like terms", "order by degree");
* ``logic``: a propositional formula rewritten to simplified negation normal form
  ("implication elimination", "De Morgan", "double negation", "absorption", ...).

Tier sets the number of steps (1-2, 3-4, 5-7, 8-10). The checker grades the final form only:
exact evaluation, equality at random points plus an "expanded and combined" test, or a truth
table plus a negation-normal-form test.
"""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Any

from corpus.synthetic import expr, logic
from corpus.synthetic.base import Problem, Task, parse_number, ranged

STEP_RANGE = {0: (1, 2), 1: (3, 4), 2: (5, 7), 3: (8, 10)}
FAMILIES = ("evaluate", "algebra", "logic")
MAX_TRIES = 2000
MAX_CHARS = 1000  # prompt + target: keeps tier 3 within ~512 tokens even for a small vocabulary
Candidate = tuple  # (prompt, original text, steps, answer, extra features)


# --- evaluate: integer expressions -----------------------------------------------------------

PREC = {"+": 1, "-": 1, "*": 2}


def random_tree(rng: random.Random, ops: int, leaf_max: int) -> tuple:
    if ops == 0:
        return ("num", rng.randint(1, leaf_max))
    left = rng.randint(0, ops - 1)
    op = rng.choice("++--*")
    return (op, random_tree(rng, left, leaf_max), random_tree(rng, ops - 1 - left, leaf_max))


def show_tree(node: tuple, parent: str | None = None, right: bool = False) -> str:
    """Minimal parentheses, except that an equal-precedence right operand keeps them, so the
    printed text parses back to this very tree (and its left-to-right order)."""
    if node[0] == "num":
        return f"({node[1]})" if node[1] < 0 and parent else str(node[1])
    text = f"{show_tree(node[1], node[0])} {node[0]} {show_tree(node[2], node[0], True)}"
    return f"({text})" if needs_parens(node, parent, right) else text


def needs_parens(node: tuple, parent: str | None, right: bool) -> bool:
    if parent is None or node[0] == "num":
        return False
    return PREC[node[0]] < PREC[parent] or (right and PREC[node[0]] == PREC[parent])


def evaluate_step(node: tuple, parent: str | None = None, right: bool = False,
                  has_sum: bool = False) -> tuple[str, str, tuple] | None:
    """Reduce the first operation (pre-order) whose operands are numbers: (rule, work, tree)."""
    if node[0] == "num":
        return None
    a, b = node[1], node[2]
    if a[0] == "num" and b[0] == "num":
        result = {"+": a[1] + b[1], "-": a[1] - b[1], "*": a[1] * b[1]}[node[0]]
        if needs_parens(node, parent, right):
            rule = "parentheses first"
        elif node[0] == "*" and has_sum:
            rule = "multiplication before addition and subtraction"
        else:
            rule = "left to right"
        return rule, f"{show_tree(a, '*')} {node[0]} {show_tree(b, '*')} = {result}", ("num", result)
    for i, child in ((1, a), (2, b)):
        hit = evaluate_step(child, node[0], i == 2, has_sum)
        if hit:
            rule, work, new = hit
            return rule, work, node[:i] + (new,) + node[i + 1:]
    return None


def contains_sum(node: tuple) -> bool:
    return node[0] in "+-" or (node[0] == "*" and (contains_sum(node[1]) or contains_sum(node[2])))


def build_evaluate(rng: random.Random, tier: int) -> Candidate | None:
    tree = random_tree(rng, ranged(rng, STEP_RANGE[tier]), 12 if tier < 2 else 20)
    text, steps = show_tree(tree), []
    while tree[0] != "num":
        rule, work, tree = evaluate_step(tree, has_sum=contains_sum(tree))
        steps.append(f"Step {len(steps) + 1} ({rule}): {work}, giving {show_tree(tree)}")
    prompt = (f"Evaluate {text} step by step, following the order of operations. "
              f"Name the rule used at each step.")
    return prompt, text, steps, str(tree[1]), {"variables": 0}


# --- algebra: expand and combine -------------------------------------------------------------

Mono = tuple  # exponents of (x, y)
NAMES = ("x", "y")


def mono_text(coef: int, mono: Mono) -> str:
    """Unsigned text of |coef| * mono: "3x^2y", "x", "7"."""
    body = "".join(n if e == 1 else f"{n}^{e}" for n, e in zip(NAMES, mono) if e)
    if not body:
        return str(abs(coef))
    return body if abs(coef) == 1 else f"{abs(coef)}{body}"


def join(parts: list[tuple[bool, str]]) -> str:
    """(negative, unsigned body) pieces -> "a - b + c"."""
    if not parts:
        return "0"
    out = ("-" if parts[0][0] else "") + parts[0][1]
    for negative, body in parts[1:]:
        out += f" {'-' if negative else '+'} {body}"
    return out


def terms_text(terms: list[tuple[int, Mono]]) -> str:
    return join([(c < 0, mono_text(c, m)) for c, m in terms])


def chunk_text(chunk: tuple) -> tuple[bool, str]:
    if chunk[0] == "term":
        return chunk[1] < 0, mono_text(chunk[1], chunk[2])
    if chunk[0] == "scale":
        k = chunk[1]
        return k < 0, f"{abs(k)}({terms_text(chunk[2])})"
    return chunk[1] < 0, f"({terms_text(chunk[2])})({terms_text(chunk[3])})"


def chunks_text(chunks: list[tuple]) -> str:
    return join([chunk_text(c) for c in chunks])


def degree_key(term: tuple[int, Mono]) -> tuple:
    return (-sum(term[1]), tuple(-e for e in term[1]))


def mul_mono(a: Mono, b: Mono) -> Mono:
    return tuple(x + y for x, y in zip(a, b))


def random_linear(rng: random.Random, two_vars: bool) -> list[tuple[int, Mono]]:
    nz = [v for v in range(-6, 7) if v]
    first = (1, 0) if not two_vars or rng.random() < 0.5 else (0, 1)
    second = (0, 0) if not two_vars or rng.random() < 0.6 else ((0, 1) if first == (1, 0) else (1, 0))
    return [(rng.choice([v for v in nz if abs(v) <= 4]), first), (rng.choice(nz), second)]


def random_loose(rng: random.Random, two_vars: bool, squares: bool) -> tuple:
    monos = [(1, 0), (0, 0)] + ([(2, 0)] if squares else []) + ([(0, 1)] if two_vars else [])
    return ("term", rng.choice([v for v in range(-9, 10) if v]), rng.choice(monos))


# tier -> (products, scales, loose terms, two variables)
ALGEBRA_SHAPE = {0: ((0, 0), (1, 1), (0, 1), False), 1: ((0, 0), (2, 2), (1, 2), False),
                 2: ((1, 1), (1, 2), (1, 2), False), 3: ((2, 2), (1, 2), (1, 2), True)}


def random_chunks(rng: random.Random, tier: int) -> list[tuple]:
    products, scales, loose, two_vars = ALGEBRA_SHAPE[tier]
    chunks = [("product", rng.choice([1, 1, -1]), random_linear(rng, two_vars), random_linear(rng, two_vars))
              for _ in range(ranged(rng, products))]
    chunks += [("scale", rng.choice([v for v in range(-5, 6) if abs(v) >= 2]), random_linear(rng, two_vars))
               for _ in range(ranged(rng, scales))]
    chunks += [random_loose(rng, two_vars, tier >= 2) for _ in range(ranged(rng, loose))]
    rng.shuffle(chunks)
    return chunks


def algebra_steps(chunks: list[tuple]) -> tuple[list[str], list[tuple[int, Mono]]]:
    """Expand, then combine, then order. Each step shows its local rewrite; the whole expression
    is shown at the end of each phase (showing it after every step would not fit tier 3 in
    512 tokens)."""
    steps: list[str] = []

    def log(rule: str, work: str) -> None:
        steps.append(f"Step {len(steps) + 1} ({rule}): {work}")

    def show_whole(phase_start: int) -> None:
        if len(steps) > phase_start:
            steps[-1] += f", giving {chunks_text(chunks)}"

    i = 0
    while i < len(chunks):
        chunk = chunks[i]
        if chunk[0] == "scale":
            new = [(chunk[1] * c, m) for c, m in chunk[2]]
            chunks[i:i + 1] = [("term", c, m) for c, m in new]
            log("distribute", f"{join([chunk_text(chunk)])} = {terms_text(new)}")
        elif chunk[0] == "product":
            new = [(chunk[1] * ca * cb, mul_mono(ma, mb)) for ca, ma in chunk[2] for cb, mb in chunk[3]]
            chunks[i:i + 1] = [("term", c, m) for c, m in new]
            log("expand the product", f"{join([chunk_text(chunk)])} = {terms_text(new)}")
        else:
            i += 1
    show_whole(0)
    expanded = len(steps)
    for mono in dict.fromkeys(c[2] for c in chunks):
        where = [j for j, c in enumerate(chunks) if c[2] == mono]
        if len(where) < 2:
            continue
        group = [chunks[j] for j in where]
        total = sum(c[1] for c in group)
        merged = [("term", total, mono)] if total else []
        chunks[:] = [new for j, c in enumerate(chunks) if j == where[0] or j not in where
                     for new in (merged if j == where[0] else [c])]
        what = f"the {mono_text(1, mono)} terms" if any(mono) else "the constants"
        log("combine like terms", f"{what}: {terms_text([(c[1], c[2]) for c in group])} = "
                                  f"{terms_text([(total, mono)]) if total else '0'}")
    show_whole(expanded)
    terms = [(c[1], c[2]) for c in chunks]
    ordered = sorted(terms, key=degree_key)
    if ordered != terms:
        chunks[:] = [("term", c, m) for c, m in ordered]
        steps.append(f"Step {len(steps) + 1} (order by degree): {terms_text(ordered)}")
    return steps, ordered


def build_algebra(rng: random.Random, tier: int) -> Candidate | None:
    chunks = random_chunks(rng, tier)
    text = chunks_text(chunks)
    steps, final = algebra_steps(list(chunks))
    prompt = f"Simplify {text} by expanding and combining like terms. Name the rule used at each step."
    return prompt, text, steps, terms_text(final), {"variables": len(expr.variables(expr.parse(text)))}


# --- logic: negation normal form -------------------------------------------------------------

LOGIC_SHAPE = {0: ((1, 2), "pq"), 1: ((2, 3), "pqr"), 2: ((3, 4), "pqrs"), 3: ((4, 6), "pqrs")}


def random_formula(rng: random.Random, connectives: int, letters: str, tier: int) -> logic.Formula:
    if connectives == 0:
        leaf = logic.var(rng.choice(letters))
        if tier >= 2 and rng.random() < 0.06:
            leaf = rng.choice([logic.TRUE, logic.FALSE])
        return logic.neg(leaf) if rng.random() < 0.2 else leaf
    ops = ["and", "or", "imp", "imp"] + (["iff"] if tier >= 3 else [])
    left = rng.randint(0, connectives - 1)
    node = (rng.choice(ops), random_formula(rng, left, letters, tier),
            random_formula(rng, connectives - 1 - left, letters, tier))
    return logic.neg(node) if rng.random() < 0.35 else node


def build_logic(rng: random.Random, tier: int) -> Candidate | None:
    connectives, letters = LOGIC_SHAPE[tier]
    formula = random_formula(rng, ranged(rng, connectives), letters, tier)
    try:
        derivation = logic.derive(formula, limit=STEP_RANGE[tier][1])
    except ValueError:  # longer than this tier allows
        return None
    if not derivation or logic.size(derivation[-1][1]) > 31:
        return None
    steps = [f"Step {i} ({rule}): {logic.show(f)}" for i, (rule, f) in enumerate(derivation, 1)]
    text = logic.show(formula)
    prompt = (f"Rewrite the formula {text} in negation normal form (no -> or <->, and ~ only "
              f"directly on letters), simplifying where a rule applies. Name the rule used at each "
              f"step. Notation: ~ not, & and, | or, -> implies, <-> if and only if, T true, F false.")
    return prompt, text, steps, logic.show(derivation[-1][1]), {"variables": len(logic.atoms(formula))}


BUILDERS = {"evaluate": build_evaluate, "algebra": build_algebra, "logic": build_logic}


class Derivations(Task):
    name = "derivations"
    summary = "step-by-step rewriting with named rules: arithmetic, polynomial algebra, propositional logic"
    hardness = ("steps", "size")

    def build(self, rng: random.Random, tier: int) -> Problem:
        family, (low, high) = rng.choice(FAMILIES), STEP_RANGE[tier]
        for _ in range(MAX_TRIES):  # rejection sampling: the tier fixes the number of steps
            candidate = BUILDERS[family](rng, tier)
            if candidate is None or not low <= len(candidate[2]) <= high:
                continue
            prompt, text, steps, answer, info = candidate
            steps = steps + [f"So the final form is {answer}."]
            if len(prompt) + sum(len(line) + 1 for line in steps) + len(answer) + 5 <= MAX_CHARS:
                break
        else:
            raise RuntimeError(f"no {family} derivation with {low}-{high} steps in {MAX_CHARS} characters")
        features = {"family": FAMILIES.index(family), "steps": len(steps) - 1,
                    "size": len(text.split()), **info}
        return Problem(prompt, steps, answer, features, {"family": family, "expression": text})

    def verify(self, meta: dict[str, Any], answer: str) -> bool:
        family, original = meta["family"], meta["expression"]
        if family == "evaluate":
            return parse_number(answer) == expr.evaluate(expr.parse(original))
        if family == "algebra":
            return polynomial_matches(original, answer)
        if family == "logic":
            candidate = logic.parse(answer)
            return logic.is_nnf(candidate) and logic.equivalent(candidate, logic.parse(original))
        raise ValueError(f"unknown family {family!r}")


def polynomial_matches(original: str, answer: str, points: int = 6) -> bool:
    """Expanded, like terms combined, and equal to ``original`` at random integer points
    (a nonzero polynomial of degree <= 4 vanishes at a random point with probability < 1/500)."""
    candidate, source = expr.parse(answer), expr.parse(original)
    monomials = expr.terms(candidate)
    if monomials is None or len(set(monomials)) != len(monomials):
        return False
    names = sorted(expr.variables(candidate) | expr.variables(source))
    rng = random.Random(f"{original}|{answer}")
    for _ in range(points):
        env = {n: Fraction(rng.randint(-1000, 1000)) for n in names}
        if expr.evaluate(candidate, env) != expr.evaluate(source, env):
            return False
    return True
