"""Traceability: every rule of the spec is implemented, tested and (for invariants) proved, and
nothing cites a rule the spec does not define.  The scanner itself is tested on small trees."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from backstop.trace import MAX_RULES_PER_TEST, build_trace, parse_spec, repo_root, scan_code, scan_test_functions, scan_tests

# The rule IDs of the first slice (margin of one position, the trigger and the two prices).
SLICE = ["NUM-001", "NUM-002"] + [f"MRG-{i:03d}" for i in range(1, 9)] + [f"LIQ-{i:03d}" for i in range(1, 4)] \
    + [f"INV-{i:03d}" for i in range(1, 9)]


def test_the_real_tree_has_no_traceability_gaps():
    trace = build_trace()
    gaps = trace.gaps()
    assert not gaps, "traceability gaps:\n  " + "\n  ".join(gaps)


def test_the_spec_defines_every_rule_of_the_slice():
    trace = build_trace()
    missing = [rid for rid in SLICE if rid not in trace.rules]
    assert not missing, f"spec/ does not define {missing}"
    empty = [rid for rid in SLICE if rid in trace.rules and not trace.rules[rid].statement]
    assert not empty, f"rules without a **Statement.**: {empty}"


# ---------------------------------------------------------------- synthetic trees

SPEC = """\
# Margin

### MRG-001 — Position value

**Statement.** The value of a position.
**Source.** seed 003.
**Rounding.** exact.

### INV-001 - Safe side

**Statement.** A healthy position is on the safe side.
It goes on on a second line.
**Source.** derived.

### MRG-002 — An old rule

**Statement.** Replaced.
**Status.** retired
"""

CODE = '''\
def compute_position_value(inst, size, price):
    """MRG-001: the value."""
    return 0


def check_safe_side(x):
    """INV-001: checked here too."""
    return x
'''

TESTS = '''\
import pytest


def test_MRG_001_value():
    pass


@pytest.mark.rules("INV-001")
def test_safe_side():
    pass
'''


def _tree(root: Path, *, spec: str = SPEC, code: str = CODE, tests: str = TESTS,
          extra: dict[str, str] | None = None) -> Path:
    files = {"spec/10-margin.md": spec, "reference/margin.py": code, "tests/test_margin.py": tests}
    files.update(extra or {})
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text), encoding="utf-8")
    return root


def _gaps(root: Path, obligations: dict[str, list[str]] | None = None) -> list[str]:
    return build_trace(root, obligations if obligations is not None else {"INV-001": ["OBL-INV-001"]}).gaps()


def test_parser_reads_headings_fields_and_status(tmp_path):
    rules = parse_spec(_tree(tmp_path) / "spec")
    assert sorted(rules) == ["INV-001", "MRG-001", "MRG-002"]
    r = rules["MRG-001"]
    assert (r.title, r.file, r.line) == ("Position value", "spec/10-margin.md", 3)
    assert r.statement == "The value of a position." and r.source == "seed 003." and r.rounding == "exact."
    assert rules["INV-001"].title == "Safe side"
    assert rules["INV-001"].statement == "A healthy position is on the safe side. It goes on on a second line."
    assert rules["MRG-002"].retired and not r.retired


def test_a_complete_tree_has_no_gaps(tmp_path):
    _tree(tmp_path)
    assert _gaps(tmp_path) == []  # MRG-002 is retired: it needs neither code nor test


def test_scanner_finds_implementing_functions_and_citing_tests(tmp_path):
    _tree(tmp_path, extra={"tests/unit/test_more.py": '''\
        import pytest

        def test_something():
            """MRG-001: cited in the docstring's first line."""

        @pytest.mark.rules("MRG-001")
        class TestValue:
            def test_a(self):
                pass
        '''})
    impl, _ = scan_code(tmp_path)
    assert [c.where for c in impl["MRG-001"]] == ["compute_position_value"]
    cited, _ = scan_tests(tmp_path)
    assert {c.where for c in cited["MRG-001"]} == {"test_MRG_001_value", "test_something", "TestValue.test_a"}
    assert [c.where for c in cited["INV-001"]] == ["test_safe_side"]


def test_detects_a_spec_id_with_no_code(tmp_path):
    _tree(tmp_path, code='''\
        def compute_position_value(inst, size, price):
            """The value (cites no rule on its first line)."""
            return 0
        ''', extra={"reference/inv.py": 'def f():\n    """INV-001: here."""\n'})
    gaps = _gaps(tmp_path)
    assert gaps == ["MRG-001: no implementing code (no reference function's docstring starts with it)"]


def test_a_mention_in_a_comment_is_not_an_implementation(tmp_path):
    _tree(tmp_path, code='''\
        # MRG-001 is computed below
        def compute_position_value(inst, size, price):
            """The value."""
            return 0


        def g():
            """INV-001: here."""
        ''')
    assert any(g.startswith("MRG-001: no implementing code") for g in _gaps(tmp_path))


def test_detects_a_spec_id_with_no_test(tmp_path):
    _tree(tmp_path, tests='''\
        import pytest

        @pytest.mark.rules("INV-001")
        def test_safe_side():
            pass

        def helper_MRG_001():  # not a test function: does not count
            pass
        ''')
    assert _gaps(tmp_path) == ["MRG-001: no test names it"]


def test_an_invariant_is_implemented_by_its_obligations_not_by_code(tmp_path):
    _tree(tmp_path, code='''\
        def compute_position_value(inst, size, price):
            """MRG-001: the value."""
            return 0
        ''')
    assert _gaps(tmp_path) == []


def test_detects_an_invariant_with_no_obligation(tmp_path):
    _tree(tmp_path)
    assert _gaps(tmp_path, obligations={"MRG-001": ["OBL-MRG-001"]}) == [
        "INV-001: an invariant with no Z3 obligation"]


# IDs the spec does not define, spelled so that this file does not itself cite them.
UNKNOWN = "MRG" + "-009"
UNKNOWN2 = "LIQ" + "-042"


def test_detects_code_citing_an_unknown_id(tmp_path):
    _tree(tmp_path, extra={"proofs/extra.py": f"# see {UNKNOWN} for the details\n"})
    gaps = _gaps(tmp_path)
    assert gaps == [f"proofs/extra.py:1: cites {UNKNOWN}, which spec/ does not define"]


def test_detects_a_test_marker_citing_an_unknown_id(tmp_path):
    _tree(tmp_path, extra={"tests/test_other.py": f'@pytest.mark.rules("{UNKNOWN2}")\ndef test_x():\n    pass\n'})
    assert _gaps(tmp_path) == [f"tests/test_other.py:1: cites {UNKNOWN2}, which spec/ does not define"]


def test_detects_a_test_name_citing_an_unknown_id(tmp_path):
    name = "test_" + UNKNOWN2.replace("-", "_") + "_nothing"
    _tree(tmp_path, extra={"tests/test_other.py": f"def {name}():\n    pass\n"})
    assert any(UNKNOWN2 in g for g in _gaps(tmp_path))


def test_detects_a_duplicate_id(tmp_path):
    _tree(tmp_path, extra={"spec/20-more.md": "## MRG-001 — Position value again\n\n**Statement.** Twice.\n"})
    with pytest.raises(ValueError, match="MRG-001 defined twice"):
        parse_spec(tmp_path / "spec")
    with pytest.raises(ValueError, match="defined twice"):
        build_trace(tmp_path, {})


def test_detects_a_duplicate_id_in_one_file(tmp_path):
    _tree(tmp_path, spec=SPEC + "\n### INV-001 — Safe side, again\n\n**Statement.** Again.\n")
    with pytest.raises(ValueError, match="INV-001 defined twice"):
        parse_spec(tmp_path / "spec")


# ---------------------------------------------------------------- a test covers a rule only when it names it specifically

# Three more rules, retired (they need neither code nor a test), so that a marker can list five IDs
# the spec defines.
RETIRED = "".join(f"\n### MRG-00{i} — Old rule {i}\n\n**Statement.** Replaced.\n**Status.** retired\n" for i in (3, 4, 5))
FIVE = '"MRG-001", "INV-001", "MRG-002", "MRG-003", "MRG-004"'


def test_the_cap_is_small():
    assert MAX_RULES_PER_TEST == 4


def test_a_catch_all_marker_covers_none_of_its_rules(tmp_path):
    """A marker citing five rules on a generic test (the old proof run's marker cited ~70) is
    refused: the rules it lists are reported as gaps, naming the catch-all."""
    _tree(tmp_path, spec=SPEC + RETIRED, tests=f"""\
        import pytest

        @pytest.mark.rules({FIVE})
        @pytest.mark.parametrize("key", ["a", "b"])
        def test_every_obligation_holds(key):
            assert key
        """)
    gaps = _gaps(tmp_path)
    assert [g.split(":", 1)[0] for g in gaps] == ["MRG-001", "INV-001"]
    for g in gaps:
        assert "no test names it specifically" in g
        assert "tests/test_margin.py::test_every_obligation_holds (catch-all of 5 rules)" in g
    cited, _ = scan_tests(tmp_path)
    assert cited == {}


def test_a_catch_all_class_marker_covers_none_of_its_rules(tmp_path):
    _tree(tmp_path, spec=SPEC + RETIRED, tests=f"""\
        import pytest

        @pytest.mark.rules({FIVE})
        class TestEverything:
            def test_a(self):
                pass
        """)
    assert [g.split(":", 1)[0] for g in _gaps(tmp_path)] == ["MRG-001", "INV-001"]


def test_a_marker_of_four_rules_still_covers_them(tmp_path):
    _tree(tmp_path, spec=SPEC + RETIRED, tests="""\
        import pytest

        @pytest.mark.rules("MRG-001", "INV-001", "MRG-002", "MRG-003")
        def test_four():
            pass
        """)
    assert _gaps(tmp_path) == []


def test_name_marker_and_docstring_count_together_toward_the_cap(tmp_path):
    """Two IDs in the name, two in the marker and one in the docstring are five: a catch-all."""
    _tree(tmp_path, spec=SPEC + RETIRED, tests='''\
        import pytest

        @pytest.mark.rules("MRG-002", "MRG-003")
        def test_MRG_001_INV_001_spread_out():
            """MRG-004: and one more here."""
        ''')
    assert [g.split(":", 1)[0] for g in _gaps(tmp_path)] == ["MRG-001", "INV-001"]


def test_a_catch_all_does_not_spoil_a_specific_test(tmp_path):
    _tree(tmp_path, spec=SPEC + RETIRED, extra={"tests/test_all.py": f"""\
        import pytest

        @pytest.mark.rules({FIVE})
        def test_everything():
            pass
        """})
    assert _gaps(tmp_path) == []  # tests/test_margin.py still names both rules on their own


def test_ids_in_other_decorators_name_nothing(tmp_path):
    """Only the rules marker, the name and the docstring's first line name rules: an ID in a
    parametrize list or an xfail reason is not a claim that the test checks that rule."""
    _tree(tmp_path, tests="""\
        import pytest

        @pytest.mark.rules("INV-001")
        def test_safe_side():
            pass

        @pytest.mark.xfail(reason="MRG-001 is not done")
        @pytest.mark.parametrize("rule", ["MRG-001"])
        def test_value(rule):
            pass
        """)
    assert _gaps(tmp_path) == ["MRG-001: no test names it"]


def test_a_proof_run_is_not_the_rule_s_test(tmp_path):
    """A test that calls the prover (directly, or through a helper of its module or of a helper
    module under tests/) re-checks the obligation, which already counts as the proof."""
    _tree(tmp_path, tests="""\
        import pytest
        from backstop.proofs.kernel import prove
        from tests import helpers


        def _prove(ob):
            assert prove(ob).ok


        def test_INV_001_is_proved():
            _prove("OBL-INV-001")


        @pytest.mark.rules("MRG-001")
        def test_value_mutant_is_killed():
            helpers.assert_killed("m1")
        """, extra={"tests/helpers.py": """\
        from backstop.proofs.kernel import prove


        def assert_killed(m):
            assert prove(m).ok
        """})
    gaps = _gaps(tmp_path)
    assert [g.split(":", 1)[0] for g in gaps] == ["MRG-001", "INV-001"]
    assert "tests/test_margin.py::test_value_mutant_is_killed (proof run)" in gaps[0]
    assert "tests/test_margin.py::test_INV_001_is_proved (proof run)" in gaps[1]


def test_the_real_tree_rests_on_no_catch_all_and_no_proof_run():
    """On the real tree no rule's coverage rests on a catch-all or a proof run, and the catch-alls
    that remain (planted-bug tables, state machines) cite only rules tested specifically too."""
    trace = build_trace()
    assert all(c.kind == "" for cites in trace.tests.values() for c in cites)
    named, _ = scan_test_functions(repo_root())
    assert max(len(cites) for cites in named) > MAX_RULES_PER_TEST  # the catch-alls are still there
    broad = {c.id for cites in named if len(cites) > MAX_RULES_PER_TEST for c in cites}
    assert broad <= set(trace.tests)
