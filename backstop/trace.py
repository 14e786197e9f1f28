"""Traceability: rule IDs in the spec, and who cites them (code, obligations, tests).

The spec's rules are Markdown headings ``### MRG-001 - Position value`` followed by fields
``**Statement.**``, ``**Source.**``, ``**Rounding.**`` and optionally ``**Status.** retired``.
A rule is *implemented* by the reference functions whose docstring's first line starts with its
ID, and *proved* by the obligations whose ``rules`` list it.

A rule is *tested* only by a test that names it **specifically**.  A test function (``test*``,
also a method of a ``Test*`` class) names the IDs that appear

* in its function name, spelled ``MRG_001``;
* in the arguments of its own ``@pytest.mark.rules(...)`` marker or its class's (IDs in other
  decorators, such as a ``parametrize`` list or an ``xfail`` reason, name nothing);
* in the first line of its docstring.

It covers those rules only when it names at most ``MAX_RULES_PER_TEST`` (4) distinct IDs in all.
A test naming more is a *catch-all* (a generic proof run, a mutation table, a whole-loop machine):
it may well exercise every rule it lists, but it cannot fail for one rule in particular, so it
covers none of them; a rule cited only by catch-alls is reported as a gap that names them.

A test that runs the Z3 prover (it calls ``prove``, directly or through a helper of its own
module, or a public helper of a non-test module under tests/ such as ``mutation.assert_killed``)
is a *proof run*: it re-checks the obligations, which the trace already counts as *proved*, so it
is not also the rule's test.  A rule's test checks the rule on concrete values or a Hypothesis
property with expectations derived apart from the code.
``tests/test_traceability.py`` fails on any gap.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ID_RE", "MAX_RULES_PER_TEST", "Rule", "Citation", "Trace", "parse_spec", "scan_code", "scan_tests",
           "scan_test_functions", "build_trace", "repo_root"]

# TRN: the transition (spec/50-transition.md), so that its rules are traced like the others.
PREFIXES = ("NUM", "MRG", "LIQ", "ENG", "INS", "JRN", "ADL", "INV", "TRN")
ID_RE = re.compile(r"(?<![\w-])(?:%s)-\d{3}[a-z]?\b" % "|".join(PREFIXES))
_TEST_ID_RE = re.compile(r"(?:%s)_\d{3}[a-z]?" % "|".join(PREFIXES))
_HEAD_RE = re.compile(r"^(#{2,4})\s+((?:%s)-\d{3}[a-z]?)\s*[-\u2013\u2014:]+\s*(.+?)\s*$" % "|".join(PREFIXES))
# A test naming more rule IDs than this is a catch-all and covers none of them (see the docstring).
MAX_RULES_PER_TEST = 4
_FIELD_RE = re.compile(r"^\s*(?:[-*]\s*)?\*\*(Statement|Source|Rounding|Status|Resolution)[.:]\*\*\s*(.*)$")


def repo_root() -> Path:
    """The source tree (the folder holding spec/, reference/, proofs/, tests/)."""
    here = Path(__file__).resolve().parent.parent
    return here


@dataclass
class Rule:
    id: str
    title: str
    file: str
    line: int
    statement: str = ""
    source: str = ""
    rounding: str = ""
    status: str = ""
    body: str = ""

    @property
    def retired(self) -> bool:
        return "retired" in self.status.lower()


@dataclass(frozen=True)
class Citation:
    id: str
    file: str
    line: int
    where: str  # function or test name
    kind: str = ""  # for a test: "" (it can cover the rule), "proof run" or "catch-all of N rules"


@dataclass
class Trace:
    rules: dict[str, Rule]
    code: dict[str, list[Citation]] = field(default_factory=dict)
    tests: dict[str, list[Citation]] = field(default_factory=dict)
    obligations: dict[str, list[str]] = field(default_factory=dict)
    mentions: list[Citation] = field(default_factory=list)  # every ID token outside spec/
    # tests that cite a rule but cannot cover it: catch-alls (more than MAX_RULES_PER_TEST IDs), proof runs
    uncounted: dict[str, list[Citation]] = field(default_factory=dict)

    def gaps(self) -> list[str]:
        out = []
        for rid, r in self.rules.items():
            if r.retired:
                continue
            # An invariant's code is its obligations over the reference functions.
            if not rid.startswith("INV-") and not self.code.get(rid):
                out.append(f"{rid}: no implementing code (no reference function's docstring starts with it)")
            if not self.tests.get(rid):
                other = self.uncounted.get(rid, [])
                if other:
                    names = ", ".join(sorted({f"{c.file}::{c.where} ({c.kind})" for c in other}))
                    out.append(f"{rid}: no test names it specifically (cited only by tests that cannot cover "
                               f"it: {names})")
                else:
                    out.append(f"{rid}: no test names it")
            if rid.startswith("INV-") and not self.obligations.get(rid):
                out.append(f"{rid}: an invariant with no Z3 obligation")
        for c in self.mentions:
            if c.id not in self.rules:
                out.append(f"{c.file}:{c.line}: cites {c.id}, which spec/ does not define")
        return out


def parse_spec(spec_dir: Path) -> dict[str, Rule]:
    rules: dict[str, Rule] = {}
    for path in sorted(spec_dir.glob("*.md")):
        current: Rule | None = None
        level = 0
        field_name = ""
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            m = _HEAD_RE.match(line)
            if m:
                rid = m.group(2)
                if rid in rules:
                    raise ValueError(f"{path.name}:{n}: {rid} defined twice (also {rules[rid].file}:{rules[rid].line})")
                current = Rule(rid, m.group(3), f"spec/{path.name}", n)
                rules[rid] = current
                level = len(m.group(1))
                field_name = ""
                continue
            if current is None:
                continue
            if line.startswith("#") and len(line) - len(line.lstrip("#")) <= level:
                current = None
                continue
            current.body += line + "\n"
            f = _FIELD_RE.match(line)
            if f:
                field_name = f.group(1).lower()
                if field_name in ("statement", "source", "rounding", "status"):
                    setattr(current, field_name, f.group(2).strip())
                continue
            if field_name in ("statement", "source", "rounding") and line.strip() and not line.lstrip().startswith(("**", "|", "```")):
                setattr(current, field_name, (getattr(current, field_name) + " " + line.strip()).strip())
            elif not line.strip():
                field_name = ""
    return rules


def _first_doc_line(node: ast.AST) -> str:
    doc = ast.get_docstring(node)  # type: ignore[arg-type]
    return doc.strip().splitlines()[0] if doc else ""


def scan_code(root: Path, folders: tuple[str, ...] = ("reference",)) -> tuple[dict[str, list[Citation]], list[Citation]]:
    """Implementing functions (docstring first line starts with IDs) and every ID mention."""
    impl: dict[str, list[Citation]] = {}
    mentions: list[Citation] = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            rel = str(path.relative_to(root))
            text = path.read_text(encoding="utf-8")
            for n, line in enumerate(text.splitlines(), start=1):
                for rid in ID_RE.findall(line):
                    mentions.append(Citation(rid, rel, n, ""))
            if folder != "reference":
                continue
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    first = _first_doc_line(node)
                    head = first.split(":", 1)[0] if ":" in first else ""
                    for rid in ID_RE.findall(head):
                        impl.setdefault(rid, []).append(Citation(rid, rel, node.lineno, node.name))
    return impl, mentions


def _rules_marker_ids(decorators: list[ast.expr]) -> set[str]:
    """IDs in the arguments of ``@pytest.mark.rules(...)`` (or ``@mark.rules``/``@rules``) markers."""
    ids: set[str] = set()
    for d in decorators:
        if not isinstance(d, ast.Call):
            continue
        f = d.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        if name != "rules":
            continue
        for arg in d.args:
            ids |= set(ID_RE.findall(ast.unparse(arg)))
    return ids


_PROVER = "prove"


def _called_names(node: ast.AST) -> set[str]:
    out: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            f = sub.func
            if isinstance(f, ast.Name):
                out.add(f.id)
            elif isinstance(f, ast.Attribute):
                out.add(f.attr)
    return out


def _prover_runners(tree: ast.AST, seed: set[str]) -> set[str]:
    """Names of the functions of a module that call the prover, directly or through each other."""
    calls: dict[str, set[str]] = {}
    for n in ast.walk(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):  # same-named defs: the union of their calls
            calls.setdefault(n.name, set()).update(_called_names(n))
    runners = set(seed)
    grew = True
    while grew:
        grew = False
        for name, called in calls.items():
            if name not in runners and called & runners:
                runners.add(name)
                grew = True
    return runners


def _shared_prover_runners(root: Path) -> set[str]:
    """Public prover-running helpers of the non-test modules of tests/ (``mutation.assert_killed``)."""
    seed = {_PROVER}
    for path in sorted((root / "tests").rglob("*.py")):
        if path.name.startswith(("test_", "conftest")):
            continue
        runners = _prover_runners(ast.parse(path.read_text(encoding="utf-8")), {_PROVER})
        seed |= {n for n in runners if not n.startswith("_")}
    return seed


def scan_test_functions(root: Path) -> tuple[list[tuple[Citation, ...]], list[Citation]]:
    """Every test function with the IDs it names (one tuple of citations per test), and every ID
    token in tests/ (for the undefined-ID check)."""
    named: list[tuple[Citation, ...]] = []
    mentions: list[Citation] = []
    shared = _shared_prover_runners(root)
    for path in sorted((root / "tests").rglob("*.py")):
        rel = str(path.relative_to(root))
        text = path.read_text(encoding="utf-8")
        for n, line in enumerate(text.splitlines(), start=1):
            for rid in ID_RE.findall(line):
                mentions.append(Citation(rid, rel, n, ""))
        tree = ast.parse(text)
        runners = _prover_runners(tree, shared)
        funcs: list[tuple[ast.FunctionDef | ast.AsyncFunctionDef, str, set[str]]] = []
        in_class: set[int] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                class_ids = _rules_marker_ids(node.decorator_list) if node.name.startswith("Test") else set()
                for sub in node.body:
                    if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        in_class.add(id(sub))
                        if node.name.startswith("Test") and sub.name.startswith("test"):
                            funcs.append((sub, f"{node.name}.{sub.name}", class_ids))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and id(node) not in in_class \
                    and node.name.startswith("test"):
                funcs.append((node, node.name, set()))
        for node, where, class_ids in funcs:
            in_name = {t.replace("_", "-") for t in _TEST_ID_RE.findall(node.name)}
            mentions.extend(Citation(rid, rel, node.lineno, where) for rid in sorted(in_name))
            ids = set(in_name)
            ids |= _rules_marker_ids(node.decorator_list) | class_ids
            ids |= set(ID_RE.findall(_first_doc_line(node)))
            if ids:
                kind = "proof run" if (_called_names(node) & runners) else ""
                named.append(tuple(Citation(rid, rel, node.lineno, where, kind) for rid in sorted(ids)))
    return named, mentions


def _split(named: list[tuple[Citation, ...]]) -> tuple[dict[str, list[Citation]], dict[str, list[Citation]]]:
    """(rules covered by specific tests, rules cited only by tests that cannot cover them)."""
    cited: dict[str, list[Citation]] = {}
    other: dict[str, list[Citation]] = {}
    for cites in named:
        if len(cites) > MAX_RULES_PER_TEST:
            cites = tuple(dataclasses.replace(c, kind=f"catch-all of {len(cites)} rules") for c in cites)
        into = other if any(c.kind for c in cites) else cited
        for c in cites:
            into.setdefault(c.id, []).append(c)
    return cited, other


def scan_tests(root: Path) -> tuple[dict[str, list[Citation]], list[Citation]]:
    """Rules covered by a test that names them specifically (at most ``MAX_RULES_PER_TEST`` IDs in
    all), and every ID token in tests/."""
    named, mentions = scan_test_functions(root)
    return _split(named)[0], mentions


def build_trace(root: Path | None = None, obligations: dict[str, list[str]] | None = None) -> Trace:
    root = root or repo_root()
    rules = parse_spec(root / "spec")
    code, code_mentions = scan_code(root, ("reference", "proofs", "backstop"))
    named, test_mentions = scan_test_functions(root)
    tests, uncounted = _split(named)
    if obligations is None:
        from backstop.proofs import load_all
        from backstop.proofs.registry import REGISTRY
        load_all()
        obligations = {}
        for ob in REGISTRY.values():
            for rid in ob.rules:
                obligations.setdefault(rid, []).append(ob.id)
    return Trace(rules, code, tests, obligations, code_mentions + test_mentions, uncounted)
