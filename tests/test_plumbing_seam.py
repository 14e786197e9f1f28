"""TRN-001: the plumbing reaches every rule function through the ``R`` argument (an AST lint).

``reference/step.py`` and ``reference/fundbook.py`` compose the rule modules.  The whole-loop proof
(OBL-INV-024) hands them a rules namespace whose members run each rule function under both
interpretations (``backstop.proofs.concolic.concolic_rules``).  A rule function called any other
way -- through a module imported by name, or a function imported from a rule module -- would run
outside that seam, so this lint refuses it: the plumbing may import only classes and constants
from a rule module, and every call of a rule function is ``R.<X>.<function>(...)``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import backstop.reference
from backstop.reference.rules import RULE_MODULES

REFERENCE_DIR = Path(backstop.reference.__file__).resolve().parent
PLUMBING = ("step.py", "fundbook.py")
RULE_MODULE_NAMES = set(RULE_MODULES.values())


def seam_violations(source: str, filename: str) -> list[str]:
    """Every call of a rule function that does not go through ``R``, as ``file:line: message``."""
    tree = ast.parse(source)
    modules: dict[str, object] = {}    # local name -> rule module
    functions: dict[str, str] = {}     # local name -> qualified rule function
    bad: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in RULE_MODULE_NAMES:
                    modules[alias.asname or alias.name] = importlib.import_module(full)
                elif node.module in RULE_MODULE_NAMES:
                    obj = getattr(importlib.import_module(node.module), alias.name)
                    if inspect.isfunction(obj):
                        functions[alias.asname or alias.name] = full
                        bad.append(f"{filename}:{node.lineno}: imports the rule function {full} (call it through R)")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in RULE_MODULE_NAMES:
                    modules[alias.asname or alias.name] = importlib.import_module(alias.name)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Name) and f.id in functions:
            bad.append(f"{filename}:{node.lineno}: calls {functions[f.id]} directly (call it through R)")
        elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in modules:
            obj = getattr(modules[f.value.id], f.attr, None)
            if inspect.isfunction(obj):
                bad.append(f"{filename}:{node.lineno}: calls {f.value.id}.{f.attr} directly (call it through R)")
    return bad


@pytest.mark.rules("TRN-001")
@pytest.mark.parametrize("name", PLUMBING)
def test_TRN_001_plumbing_calls_rule_functions_only_through_R(name):
    path = REFERENCE_DIR / name
    assert seam_violations(path.read_text(), name) == []


@pytest.mark.rules("TRN-001")
@pytest.mark.parametrize("source, needle", [
    ("from backstop.reference import margin as M\nM.compute_equity(1, 2, 3)\n", "calls M.compute_equity directly"),
    ("import backstop.reference.adl as A\nA.adl_fires(1)\n", "calls A.adl_fires directly"),
    ("from backstop.reference.fund import running_peak\nrunning_peak(1, 2)\n", "imports the rule function"),
])
def test_TRN_001_the_seam_lint_catches_a_planted_bypass(source, needle):
    assert any(needle in v for v in seam_violations(source, "planted.py"))


@pytest.mark.rules("TRN-001")
def test_TRN_001_classes_and_constants_may_be_imported():
    src = "from backstop.reference.engine import Level\nfrom backstop.reference import fund as F\nF.Book({}, {})\nLevel(1, 2)\n"
    assert seam_violations(src, "ok.py") == []
