"""Every rule ID of spec/ that computes a number or a decision is reachable through ``backstop eval``.

The rule IDs are read from spec/*.md (``backstop.trace.parse_spec``), so a new rule is enumerated
without editing this file.  A rule is *reachable* when some eval answer names it in a quantity's
``rules`` (or, for a rule whose decision is a refusal, in the error of a refused request).  The
requests are every ``examples/eval-*.json`` (the README's examples) plus the refused requests
below.  Rules that compute nothing are listed in :data:`COMPUTE_NOTHING`, each with its reason;
the list may not go stale (an exempt rule that eval does reach, or that the spec no longer has,
fails the test).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backstop.cli import evaluate_request
from backstop.jsonio import loads
from backstop.reference.errors import InvalidInput
from backstop.trace import parse_spec

ROOT = Path(__file__).resolve().parents[2]

_INVARIANT = "an invariant: a property of other rules' results, proved in proofs/ and checked in tests; it computes nothing itself"

COMPUTE_NOTHING = {
    "NUM-001": "a convention: which kernel helpers rule code may use (the lint of tests/test_kernel_lint.py); "
               "every rounded quantity cites NUM-002 instead",
    "JRN-001": "a journal invariant (every entry balances per currency); the fund's balances eval reports are its "
               "fold, cited as JRN-002",
    "JRN-003": "a journal property (recomputing from the entries gives the same balances); nothing to ask",
    # INV-021, INV-023 (named by liquidation records) and INV-024, INV-025 (the transition's
    # invariants, reported by the transition operation) are reached
    **{f"INV-{n:03d}": _INVARIANT for n in range(1, 27) if n not in (21, 23, 24, 25)},
}

# requests whose *refusal* is the rule's decision (the rule is named in the error)
REFUSED = [
    ("INS-009", {"operation": "fund_window", "start_ms": 1000, "events": [{"type": "top_up", "time_ms": 999, "amount": 1}]}),
]


def _rules_of(node, out: set[str]) -> set[str]:
    if isinstance(node, dict):
        if isinstance(node.get("rules"), list):
            out.update(node["rules"])
        for v in node.values():
            _rules_of(v, out)
    elif isinstance(node, list):
        for v in node:
            _rules_of(v, out)
    return out


def reached() -> set[str]:
    seen: set[str] = set()
    for f in sorted((ROOT / "examples").glob("eval-*.json")):
        _rules_of(evaluate_request(loads(f.read_text(encoding="utf-8"), f.name)), seen)
    for rule, req in REFUSED:
        with pytest.raises(InvalidInput) as e:
            evaluate_request(loads(json.dumps(req)))
        assert e.value.rule == rule, (rule, e.value)
        seen.add(e.value.rule)
    return seen


def test_every_computing_rule_is_reachable_through_eval():
    spec = set(parse_spec(ROOT / "spec"))
    assert len(spec) > 60  # the spec was read
    got = reached()
    missing = sorted(spec - got - set(COMPUTE_NOTHING))
    assert not missing, f"rules not reachable through any eval operation: {missing}"


def test_the_compute_nothing_list_is_not_stale():
    spec = set(parse_spec(ROOT / "spec"))
    got = reached()
    assert not set(COMPUTE_NOTHING) - spec, "exempt rules the spec no longer has"
    assert not set(COMPUTE_NOTHING) & got, f"exempt rules that eval does reach: {sorted(set(COMPUTE_NOTHING) & got)}"
    assert all(len(reason) > 20 for reason in COMPUTE_NOTHING.values())


def test_the_check_can_fail():
    # without the ADL and transition examples, the ADL allocation rules are not reached: the enumeration notices
    seen: set[str] = set()
    for f in sorted((ROOT / "examples").glob("eval-*.json")):
        if f.name not in ("eval-okx-adl.json", "eval-okx-transition.json"):
            _rules_of(evaluate_request(loads(f.read_text(encoding="utf-8"), f.name)), seen)
    assert {"ADL-006", "ADL-008", "ADL-009"} - seen == {"ADL-006", "ADL-008", "ADL-009"}
