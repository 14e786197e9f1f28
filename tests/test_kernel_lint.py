"""NUM-001: rule modules use only the numeric kernel (an AST lint).

Rule code runs under two interpretations (exact numbers and Z3 terms), so it may not branch on a
number with Python control flow, nor use operators whose meaning differs between them or
silently leaves exact arithmetic:

* ``if`` statements, conditional expressions, ``and`` / ``or``, ``not``, chained comparisons,
  ``while``, ``match`` and comprehension filters (each calls ``bool()`` on a value that may be a
  Z3 term) -- use ``num.ite`` / ``num.and_`` / ``num.or_`` / ``num.not_``;
* the built-ins ``min``, ``max``, ``abs``, ``round``, ``float`` (and ``divmod``, ``pow``, their
  operator forms) -- use ``num.min_`` / ``num.max_`` / ``num.abs_`` and the rounding helpers;
* the operators ``/``, ``//``, ``%`` (also as ``/=`` etc.) -- use ``num.div`` and the named
  rounding helpers (Python's ``//`` floors, SMT's ``div`` is Euclidean);
* float literals, and ``**`` unless the exponent is a non-negative integer literal;
* ``import math``, ``import decimal``, ``from math/decimal import ...``.

The rule modules are every module in ``reference/`` except the kernel and the plumbing
(num, types, errors, profile, evaluate, __init__), computed here so that a new rule module is
covered without editing this file.  Each violation is reported as ``file:line: message``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import backstop.reference

REFERENCE_DIR = Path(backstop.reference.__file__).resolve().parent
NOT_RULE_MODULES = {"num.py", "types.py", "errors.py", "profile.py", "read.py", "evaluate.py", "events.py", "step.py", "fundbook.py", "rules.py", "__init__.py"}
FORBIDDEN_CALLS = {"min", "max", "abs", "round", "float", "divmod", "pow"}
FORBIDDEN_MODULES = {"math", "decimal"}
FORBIDDEN_BINOPS = {ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%"}


def rule_modules() -> list[Path]:
    return sorted(p for p in REFERENCE_DIR.glob("*.py") if p.name not in NOT_RULE_MODULES)


def _nonneg_int_literal(node: ast.AST) -> bool:
    return (isinstance(node, ast.Constant) and isinstance(node.value, int)
            and not isinstance(node.value, bool) and node.value >= 0)


class _Lint(ast.NodeVisitor):
    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.violations: list[str] = []

    def _report(self, node: ast.AST, message: str) -> None:
        self.violations.append(f"{self.filename}:{getattr(node, 'lineno', 0)}: {message}")

    # -- branching on values
    def visit_If(self, node: ast.If) -> None:
        self._report(node, "`if` statement (use num.ite)")
        self.generic_visit(node)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self._report(node, "conditional expression `a if c else b` (use num.ite)")
        self.generic_visit(node)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        op = "and" if isinstance(node.op, ast.And) else "or"
        self._report(node, f"boolean `{op}` (use num.and_ / num.or_)")
        self.generic_visit(node)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if isinstance(node.op, ast.Not):
            self._report(node, "boolean `not` (use num.not_)")
        self.generic_visit(node)

    def visit_Compare(self, node: ast.Compare) -> None:
        if len(node.ops) > 1:
            self._report(node, "chained comparison (an implicit `and`; use num.and_)")
        self.generic_visit(node)

    def visit_While(self, node: ast.While) -> None:
        self._report(node, "`while` loop (branches on a value)")
        self.generic_visit(node)

    def visit_Match(self, node: ast.Match) -> None:
        self._report(node, "`match` statement (branches on a value)")
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        for cond in node.ifs:
            self._report(cond, "comprehension `if` filter (branches on a value)")
        self.generic_visit(node)

    # -- built-ins
    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            self._report(node, f"call to built-in `{node.func.id}` (use the num kernel)")
        self.generic_visit(node)

    # -- operators
    def visit_BinOp(self, node: ast.BinOp) -> None:
        self._check_op(node, node.op, node.right)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_op(node, node.op, node.value)
        self.generic_visit(node)

    def _check_op(self, node: ast.AST, op: ast.operator, right: ast.AST) -> None:
        for kind, symbol in FORBIDDEN_BINOPS.items():
            if isinstance(op, kind):
                self._report(node, f"operator `{symbol}` (use num.div / num.div_floor / the rounding helpers)")
        if isinstance(op, ast.Pow) and not _nonneg_int_literal(right):
            self._report(node, "`**` with an exponent that is not a non-negative integer literal")

    # -- literals and imports
    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, (float, complex)):
            self._report(node, f"float literal {node.value!r} (use an int or fractions.Fraction)")

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name.split(".")[0] in FORBIDDEN_MODULES:
                self._report(node, f"`import {alias.name}`")

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module and node.module.split(".")[0] in FORBIDDEN_MODULES:
            self._report(node, f"`from {node.module} import ...`")


def lint_source(source: str, filename: str = "<string>") -> list[str]:
    """Every violation in ``source`` as ``file:line: message``."""
    checker = _Lint(filename)
    checker.visit(ast.parse(source, filename))
    return checker.violations


# ---------------------------------------------------------------- the rule modules

def test_NUM_001_rule_module_list_is_computed_and_not_empty():
    names = [p.name for p in rule_modules()]
    assert "margin.py" in names
    assert not set(names) & NOT_RULE_MODULES


@pytest.mark.rules("NUM-001", "NUM-002")
@pytest.mark.parametrize("path", rule_modules(), ids=lambda p: p.name)
def test_rule_module_uses_only_the_numeric_kernel(path):
    rel = f"reference/{path.name}"
    violations = lint_source(path.read_text(encoding="utf-8"), rel)
    assert not violations, "rule code must use the numeric kernel:\n" + "\n".join(violations)


# ---------------------------------------------------------------- the lint itself

PLANTED = [
    ("if", "def f(x):\n    if x > 0:\n        return x\n    return 0\n", "`if` statement", 2),
    ("ifexp", "def f(x):\n    return x if x > 0 else 0\n", "conditional expression", 2),
    ("and", "def f(a, b):\n    return a > 0 and b > 0\n", "boolean `and`", 2),
    ("or", "def f(a, b):\n    return a > 0 or b > 0\n", "boolean `or`", 2),
    ("not", "def f(a):\n    return not a\n", "boolean `not`", 2),
    ("chained", "def f(a):\n    return 0 < a < 1\n", "chained comparison", 2),
    ("while", "def f(a):\n    while a:\n        a = a - 1\n", "`while` loop", 2),
    ("comprehension if", "def f(xs):\n    return [x for x in xs if x]\n", "comprehension `if`", 2),
    ("min", "def f(a, b):\n    return min(a, b)\n", "built-in `min`", 2),
    ("max", "def f(a, b):\n    return max(a, b)\n", "built-in `max`", 2),
    ("abs", "def f(a):\n    return abs(a)\n", "built-in `abs`", 2),
    ("round", "def f(a):\n    return round(a, 2)\n", "built-in `round`", 2),
    ("float", "def f(a):\n    return float(a)\n", "built-in `float`", 2),
    ("divmod", "def f(a, b):\n    return divmod(a, b)\n", "built-in `divmod`", 2),
    ("div", "def f(a, b):\n    return a / b\n", "operator `/`", 2),
    ("floordiv", "def f(a, b):\n    return a // b\n", "operator `//`", 2),
    ("mod", "def f(a, b):\n    return a % b\n", "operator `%`", 2),
    ("augdiv", "def f(a, b):\n    a /= b\n    return a\n", "operator `/`", 2),
    ("float literal", "RATE = 0.005\n", "float literal", 1),
    ("float in expr", "def f(a):\n    return a * 1e-8\n", "float literal", 2),
    ("sqrt", "def f(a):\n    return a ** 0.5\n", "`**`", 2),
    ("negative power", "def f(a):\n    return a ** -1\n", "`**`", 2),
    ("symbolic power", "def f(a, n):\n    return a ** n\n", "`**`", 2),
    ("import math", "import math\n", "`import math`", 1),
    ("from math", "from math import floor\n", "`from math import", 1),
    ("from decimal", "from decimal import Decimal\n", "`from decimal import", 1),
    ("import decimal", "import decimal as d\n", "`import decimal`", 1),
]


@pytest.mark.rules("NUM-001")
@pytest.mark.parametrize("label,source,needle,line", PLANTED, ids=[p[0] for p in PLANTED])
def test_lint_catches_a_planted_violation(label, source, needle, line):
    violations = lint_source(source, "planted.py")
    assert violations, f"the lint missed a planted {label}"
    assert any(needle in v and v.startswith(f"planted.py:{line}:") for v in violations), violations


@pytest.mark.rules("NUM-001")
def test_lint_accepts_kernel_style_code():
    clean = (
        "from backstop.reference import num\n"
        "def f(inst, pos, mark):\n"
        "    k = pos.size * inst.contract_value * inst.scale\n"
        "    v = num.ite(inst.is_linear, k * mark, num.div(k, mark))\n"
        "    t = num.ite(num.and_(v > 0, mark >= 1), num.ceil(v), num.floor(v))\n"
        "    for tier in inst.tier_table.tiers:\n"
        "        t = num.ite(v > tier.cap, t, t + 1)\n"
        "    x = v ** 2 - 10 ** 8\n"
        "    return num.min_(t, num.abs_(x))\n"
    )
    assert lint_source(clean) == []


@pytest.mark.rules("NUM-001")
def test_lint_reports_every_violation_with_its_line():
    src = "import math\nX = 1.5\ndef f(a, b):\n    return min(a / b, 2)\n"
    got = lint_source(src, "m.py")
    assert "m.py:1: `import math`" in got
    assert any(v.startswith("m.py:2: float literal") for v in got)
    assert any(v.startswith("m.py:4: call to built-in `min`") for v in got)
    assert any(v.startswith("m.py:4: operator `/`") for v in got)
    assert len(got) == 4
