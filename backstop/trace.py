"""Traceability: rule IDs in the spec, and who cites them (code, obligations, tests).

The spec's rules are Markdown headings ``### MRG-001 - Position value`` followed by fields
``**Statement.**``, ``**Source.**``, ``**Rounding.**`` and optionally ``**Status.** retired``.
A rule is *implemented* by the reference functions whose docstring's first line starts with its
ID, *tested* by test functions that name it (in the function name as ``MRG_001``, in a
``@pytest.mark.rules(...)`` marker, or in the docstring's first line), and *proved* by the
obligations whose ``rules`` list it.  ``tests/test_traceability.py`` fails on any gap.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["ID_RE", "Rule", "Citation", "Trace", "parse_spec", "scan_code", "scan_tests", "build_trace", "repo_root"]

PREFIXES = ("NUM", "MRG", "LIQ", "ENG", "INS", "JRN", "ADL", "TRN", "INV")
ID_RE = re.compile(r"(?<![\w-])(?:%s)-\d{3}[a-z]?\b" % "|".join(PREFIXES))
_TEST_ID_RE = re.compile(r"(?:%s)_\d{3}[a-z]?" % "|".join(PREFIXES))
_HEAD_RE = re.compile(r"^(#{2,4})\s+((?:%s)-\d{3}[a-z]?)\s*[-\u2013\u2014:]+\s*(.+?)\s*$" % "|".join(PREFIXES))
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


@dataclass
class Trace:
    rules: dict[str, Rule]
    code: dict[str, list[Citation]] = field(default_factory=dict)
    tests: dict[str, list[Citation]] = field(default_factory=dict)
    obligations: dict[str, list[str]] = field(default_factory=dict)
    mentions: list[Citation] = field(default_factory=list)  # every ID token outside spec/

    def gaps(self) -> list[str]:
        out = []
        for rid, r in self.rules.items():
            if r.retired:
                continue
            # An invariant's code is its obligations over the reference functions.
            if not rid.startswith("INV-") and not self.code.get(rid):
                out.append(f"{rid}: no implementing code (no reference function's docstring starts with it)")
            if not self.tests.get(rid):
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


def scan_tests(root: Path) -> tuple[dict[str, list[Citation]], list[Citation]]:
    """Test functions that name an ID (function name, rules marker, or docstring first line)."""
    cited: dict[str, list[Citation]] = {}
    mentions: list[Citation] = []
    for path in sorted((root / "tests").rglob("*.py")):
        rel = str(path.relative_to(root))
        text = path.read_text(encoding="utf-8")
        for n, line in enumerate(text.splitlines(), start=1):
            for rid in ID_RE.findall(line):
                mentions.append(Citation(rid, rel, n, ""))
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                class_ids = set(ID_RE.findall(" ".join(ast.unparse(d) for d in node.decorator_list)))
                for sub in node.body:
                    if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)) and sub.name.startswith("test"):
                        for rid in class_ids:
                            cited.setdefault(rid, []).append(Citation(rid, rel, sub.lineno, f"{node.name}.{sub.name}"))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                ids = {t.replace("_", "-") for t in _TEST_ID_RE.findall(node.name)}
                ids |= set(ID_RE.findall(" ".join(ast.unparse(d) for d in node.decorator_list)))
                ids |= set(ID_RE.findall(_first_doc_line(node)))
                for rid in ids:
                    cited.setdefault(rid, []).append(Citation(rid, rel, node.lineno, node.name))
    return cited, mentions


def build_trace(root: Path | None = None, obligations: dict[str, list[str]] | None = None) -> Trace:
    root = root or repo_root()
    rules = parse_spec(root / "spec")
    code, code_mentions = scan_code(root, ("reference", "proofs", "backstop"))
    tests, test_mentions = scan_tests(root)
    if obligations is None:
        from backstop.proofs import load_all
        from backstop.proofs.registry import REGISTRY
        load_all()
        obligations = {}
        for ob in REGISTRY.values():
            for rid in ob.rules:
                obligations.setdefault(rid, []).append(ob.id)
    return Trace(rules, code, tests, obligations, code_mentions + test_mentions)
