"""Inputs that never crash (issue 12): a few thousand seeded generated cases across every input
boundary of the command line (``tests/fuzz/fuzzcases.py``), each ending in a valid answer or a
refusal (exit 2, one line naming the field, nothing left behind); never a traceback, never exit 1,
never a malformed input answered as valid.  ``bench/bench_fuzz.py --cases 100000`` runs the long
version.  A few cases also run as processes, to show the in-process runner judges them the same.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fuzzcases as FZ  # noqa: E402

CASES = 2000
SEED = 2026


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return FZ.Corpus(tmp_path_factory.mktemp("fuzz-corpus"))


@pytest.mark.rules("TRN-007")  # every input through one set of checks; a refusal changes nothing
def test_generated_inputs_are_answered_or_refused(corpus, tmp_path):
    problems, outcomes = [], {}
    for case in FZ.generate(SEED, CASES, corpus):
        v = FZ.run_case(case, tmp_path)
        outcomes[(case.command, v.outcome)] = outcomes.get((case.command, v.outcome), 0) + 1
        if v.problem:
            problems.append(str(v))
    assert not problems, f"{len(problems)} problem(s); first:\n" + "\n".join(problems[:5])
    # every command was exercised both ways (the generator's mix is not degenerate)
    for cmd in FZ.COMMANDS:
        assert outcomes.get((cmd, "refused"), 0) > 10, (cmd, outcomes)
        assert outcomes.get((cmd, "answered"), 0) + outcomes.get((cmd, "differs"), 0) > 0, (cmd, outcomes)


def _case(corpus, what: str, command: str) -> FZ.Case:
    for case in FZ.generate(SEED, 3000, corpus, command):
        if what in case.what:
            return case
    raise AssertionError(f"no generated {command} case {what!r}")


@pytest.mark.parametrize("command, what", [
    ("eval", "bad number"), ("eval", "as shipped"), ("simulate", "--out on an existing file"),
    ("fund-history", "--svg into a missing folder"), ("fund-history", "an unknown --fund"),
    ("profiles show", "underlying="), ("check-trace", "line"),
])
def test_the_in_process_runner_matches_a_process(corpus, tmp_path, command, what):
    case = _case(corpus, what, command)
    inproc, proc = FZ.run_case(case, tmp_path), FZ.run_subprocess(case, tmp_path)
    assert (inproc.code, inproc.problem) == (proc.code, proc.problem), (str(inproc), str(proc))
    assert inproc.stdout.replace(str(tmp_path), "") .count("\n") == proc.stdout.count("\n")
    assert inproc.stderr.splitlines()[:1] and proc.stderr.splitlines()[:1] or inproc.code == 0


def test_the_judge_catches_each_kind_of_failure(tmp_path):
    """The harness itself can fail: a crash, a silent accept, a two-line refusal and a leftover
    are each reported (a fuzz run that cannot fail proves nothing)."""
    d = tmp_path
    c = FZ.Case("eval", ["eval"], "refuse", ("size",))
    assert FZ.judge(c, None, "", "Traceback ...", {}, {}, d).problem == "crash"
    assert FZ.judge(c, 1, "", "", {}, {}, d).problem == "crash"
    assert FZ.judge(c, 0, "{}", "", {}, {}, d).problem == "silent accept"
    assert FZ.judge(c, 2, "", "error: size: x\nmore\n", {}, {}, d).problem.startswith("bad refusal")
    assert FZ.judge(c, 2, "", "error: price: x\n", {}, {}, d).problem.startswith("bad refusal")
    assert FZ.judge(c, 2, "", "error: size: x\n", {}, {"out": "dir"}, d).problem == "leftover"
    assert FZ.judge(c, 2, "", "error: size: x\n", {}, {}, d).problem == ""
    ok = FZ.Case("eval", ["eval"], "ok", same_stdout="A")
    assert FZ.judge(ok, 0, "B", "", {}, {}, d).problem == "wrong answer"
    assert FZ.judge(ok, 2, "", "error: x: y\n", {}, {}, d).problem == "false refusal"


def test_readme_input_bounds_example(tmp_path):
    """README "Input bounds": the 61-digit size is refused as printed there (61 > the bound of 60)."""
    readme = (FZ.ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Input bounds", 1)[1].split("```", 2)[1]
    cmd, expected = [l for l in block.splitlines() if l][:2]
    request = cmd.split("echo '", 1)[1].rsplit("' | backstop eval", 1)[0]
    assert request.count("0") - "30000".count("0") - "29000".count("0") == 60  # size: 1 and sixty zeros
    v = FZ.run_case(FZ.Case("eval", ["eval"], "refuse", ("positions[0].size",), stdin=request), tmp_path)
    assert (v.code, v.problem) == (2, "")
    assert v.stderr.strip() == expected
