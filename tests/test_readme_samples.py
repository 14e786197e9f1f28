"""Every code block of README.md that shows output is produced and checked by a test (issue 12).

The README's fenced code blocks are read in order, each with the HTML comments on the lines right
above its opening fence.  Every block must be one of:

* a **transcript**: its first line starts with ``$ ``.  Each ``$ `` line is run with bash (no
  ``pipefail``) in a temporary directory holding symlinks to the checkout's ``examples/`` (``LINKED``;
  so whatever a command writes into ``build/`` lands in the temporary directory, never in the
  checkout), with the venv's ``backstop`` console script first on ``PATH``, and its combined
  stdout and stderr is compared with the lines shown up to the next ``$ `` line.  ``echo $?`` shows
  the exit code of the command before it (each command is run as ``(exit PREVIOUS); COMMAND``), and
  a command line ending in ``# exit N`` must exit with ``N``;
* ``<!-- output-of: COMMAND -->``: an output shown without its command (an error line); the
  command is run as above and its output compared with the whole block;
* ``<!-- produced-by: NAME -->``: produced and compared by ``PRODUCERS[NAME]`` below (the planted
  false obligation's scenario and JSON record: no shell command can plant it, so a fresh Python
  process registers it in the registry and runs ``backstop prove`` through ``cli.main``);
* ``<!-- checked-by: FILE -->``: left to that test file (an expensive command: the ``prove`` sample,
  the ``audit`` sample); checked here only that ``FILE`` exists and names the README and the block's
  ``backstop <command>``;
* ``<!-- eval-example: FILE -->`` with the response excerpt after it: the request and response
  pair that ``tests/test_readme_examples.py`` checks;
* ``<!-- commands: WORDS -->``: commands without output shown; each line is run and must exit 0;
* ``<!-- not-output: REASON -->``: an input, a schema, or commands too expensive to run here
  (a full ``make audit``); the reason says which.

Any other block fails :func:`test_every_block_is_checked_or_marked`, so the README cannot grow an
unchecked output.  ``<!-- setup: COMMAND -->`` lines (any number, before the marker) run first in the
same directory and must exit 0; their output is not compared.

The comparison is line by line and exact, with these normalisations only (:func:`normalise`):
trailing whitespace of a line and trailing blank lines are dropped; a README line that is ``...``
(indented or not) matches any number of lines (an elision); and the measured times and speeds of
``TIMES`` are masked on both sides.  There is no parallel run among the commands run here, so no
instance order needs normalising (the ``prove`` and ``audit`` samples are ``checked-by``).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LINKED = ("examples",)  # what the temporary directory links to (the commands read only these)

# Measured values that differ from run to run, masked on both sides (and nothing else):
TIMES = [
    # a duration in seconds with a decimal point: "0.59s" (prove), "in 0.032 s" (simulate), "in 7.5 s" (vectors)
    (re.compile(r"\b\d+\.\d+(?= ?s\b)"), "<T>"),
    # a speed: "(210 events/s)", "(1,234 events/s)" (simulate)
    (re.compile(r"\b[\d,]+(?= events/s\b)"), "<N>"),
]

MARKERS = ("output-of", "produced-by", "checked-by", "eval-example", "commands", "not-output", "setup")
COMMENT = re.compile(r"^<!-- ([a-z-]+): (.*?) -->$")
FENCE = re.compile(r"^```(\S*)\s*$")


@dataclass
class Block:
    line: int                     # 1-based line of the opening fence
    lang: str
    text: str
    marks: list[tuple[str, str]] = field(default_factory=list)  # (kind, value), top to bottom
    gap_before: str = ""          # the text between the previous block's closing fence and this one

    def mark(self, kind: str) -> str | None:
        vals = [v for k, v in self.marks if k == kind]
        return vals[0] if vals else None

    @property
    def id(self) -> str:
        first = self.text.splitlines()[0] if self.text else ""
        return f"L{self.line}:{first[:40]}"


def parse_blocks(md: str) -> list[Block]:
    """The fenced code blocks of ``md``, each with the HTML comments right above its fence."""
    lines = md.splitlines()
    blocks: list[Block] = []
    i, last_close = 0, 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start = i
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        if j == len(lines):
            raise AssertionError(f"README line {start + 1}: a code block is never closed")
        marks = []
        k = start - 1
        while k >= 0 and lines[k].startswith("<!--"):
            c = COMMENT.match(lines[k])
            assert c, f"README line {k + 1}: a comment before a code block is not '<!-- kind: value -->'"
            marks.insert(0, (c.group(1), c.group(2)))
            k -= 1
        blocks.append(Block(start + 1, m.group(1), "\n".join(lines[start + 1:j]), marks,
                            "\n".join(lines[last_close:start])))
        last_close = j + 1
        i = j + 1
    return blocks


def classify(blocks: list[Block]) -> list[str]:
    """The kind of every block (a transcript, a marker's kind, or ``eval-example`` for the response
    excerpt after a marked request); raises naming the first block that is neither."""
    kinds: list[str] = []
    for n, b in enumerate(blocks):
        for kind, value in b.marks:
            assert kind in MARKERS, f"README line {b.line}: unknown marker {kind!r} (one of {MARKERS})"
            assert value.strip(), f"README line {b.line}: marker {kind!r} without a value"
        main = [k for k, _ in b.marks if k != "setup"]
        assert len(main) <= 1, f"README line {b.line}: more than one marker {main}"
        if main:
            kinds.append(main[0])
        elif n > 0 and blocks[n - 1].mark("eval-example") and not b.gap_before.strip() and b.lang == "json":
            kinds.append("eval-response")
        elif b.text.startswith("$ "):
            kinds.append("transcript")
        else:
            raise AssertionError(
                f"README line {b.line}: a code block that is neither checked nor marked "
                f"(start it with '$ COMMAND', or put '<!-- output-of: COMMAND -->', '<!-- checked-by: FILE -->' "
                f"or '<!-- not-output: REASON -->' right above it): {b.text.splitlines()[:1]}")
        if kinds[-1] == "transcript" or kinds[-1] == "output-of":
            assert (kinds[-1] == "transcript") == b.text.startswith("$ "), \
                f"README line {b.line}: an output-of block shows no '$ ' command (or a transcript has no '$ ' first)"
    return kinds


# ---------------------------------------------------------------- comparing

def normalise(line: str) -> str:
    line = line.rstrip()
    for rx, repl in TIMES:
        line = rx.sub(repl, line)
    return line


def _trim(lines: list[str]) -> list[str]:
    lines = [normalise(x) for x in lines]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def matches(shown: list[str], got: list[str]) -> bool:
    """``got`` equals ``shown`` line by line, a ``...`` line of ``shown`` standing for any number of lines."""
    shown, got = _trim(shown), _trim(got)

    @functools.lru_cache(maxsize=None)
    def m(i: int, j: int) -> bool:
        if i == len(shown):
            return j == len(got)
        if shown[i].strip() == "...":
            return any(m(i + 1, k) for k in range(j, len(got) + 1))
        return j < len(got) and shown[i] == got[j] and m(i + 1, j + 1)
    return m(0, 0)


def assert_matches(shown: list[str], got: list[str], what: str) -> None:
    if not matches(shown, got):
        import difflib
        diff = "\n".join(difflib.unified_diff(_trim(shown), _trim(got), "README", "output", lineterm=""))
        raise AssertionError(f"{what}: the README's lines are not what the command prints\n{diff}")


# ---------------------------------------------------------------- running

def backstop_bin() -> Path:
    here = Path(sys.executable).parent / "backstop"
    if here.is_file():
        return here.parent
    found = shutil.which("backstop")
    assert found, "no backstop console script (run `make .venv/.installed`)"
    return Path(found).parent


def workdir(tmp: Path) -> Path:
    for name in LINKED:
        (tmp / name).symlink_to(ROOT / name, target_is_directory=True)
    return tmp


def run(cmd: str, cwd: Path, previous: int = 0, timeout: float = 300) -> tuple[int, str]:
    """``cmd`` in bash in ``cwd``, with ``$?`` = ``previous``; (exit code, stdout and stderr as printed)."""
    env = dict(os.environ, PATH=f"{backstop_bin()}{os.pathsep}{os.environ.get('PATH', '')}")
    env.pop("BASHOPTS", None)
    env.pop("SHELLOPTS", None)
    r = subprocess.run(["bash", "-c", f"(exit {previous}); {cmd}"], cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    return r.returncode, r.stdout


def transcript(text: str) -> list[tuple[str, list[str]]]:
    """``$ COMMAND`` lines and the output lines after each."""
    steps: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            assert steps, f"output before the first '$ ' line: {line!r}"
            steps[-1][1].append(line)
    return steps


EXIT = re.compile(r"#\s*exit (\d+)\s*$")


def run_transcript(steps: list[tuple[str, list[str]]], cwd: Path, setups: list[str] = ()) -> None:
    for s in setups:
        rc, out = run(s, cwd)
        assert rc == 0, f"setup {s!r} exited {rc}:\n{out}"
    rc = 0
    for cmd, shown in steps:
        rc, out = run(cmd, cwd, rc)
        assert_matches(shown, out.splitlines(), f"$ {cmd}")
        want = EXIT.search(cmd)
        if want:
            assert rc == int(want.group(1)), f"$ {cmd}: exit {rc}"


# ---------------------------------------------------------------- in-process producers

# The README's deliberately false claim, registered in a fresh process (a fresh Z3, as for a user's
# `backstop prove`) before the command runs: the equity of any position is positive (false: a long
# with no margin and a mark below its entry has a negative equity, MRG-003).
PLANTED = """
import sys
from backstop import cli
from backstop.proofs import load_all
from backstop.proofs.registry import REGISTRY, Obligation
from backstop.reference import margin as M

def body(ctx):
    pos = ctx.position()
    mark = ctx.price("mark")
    return ctx.observe("equity", M.compute_equity(ctx.instrument, pos, mark)) > 0

load_all()
REGISTRY["OBL-TEST-BAD"] = Obligation(id="OBL-TEST-BAD", title="bogus: equity is positive", rules=("MRG-003",),
                                      statement="equity > 0", premises="any position", body=body)
sys.exit(cli.main(sys.argv[1:]))
"""


def _prove_planted(tmp: Path, *extra: str) -> tuple[int, str]:
    r = subprocess.run([sys.executable, "-c", PLANTED, "prove", "--no-cache", "--only", "OBL-TEST-BAD[BTC-USDT-SWAP]",
                        *extra], cwd=tmp, capture_output=True, text=True, timeout=300)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, r.stdout


def planted_scenario(block: Block, tmp: Path) -> None:
    """What `backstop prove` prints for the planted obligation after "1 obligation instance(s) not ok:"."""
    rc, out = _prove_planted(tmp)
    assert rc == 1, out
    head, sep, failure = out.partition("1 obligation instance(s) not ok:\n\n")
    assert sep, out
    assert_matches(block.text.splitlines(), failure.splitlines(), "the planted obligation's scenario")


def planted_record(block: Block, tmp: Path) -> None:
    """`backstop prove --json -`'s record of the planted obligation, the same JSON as the README's
    (``seconds``, the one measured value, aside)."""
    rc, out = _prove_planted(tmp, "--json", "-")
    assert rc == 1, out
    records = json.loads(out)
    assert len(records) == 1
    got, shown = records[0], json.loads(block.text)
    assert isinstance(got["seconds"], float) and isinstance(shown["seconds"], float)
    got["seconds"] = shown["seconds"]
    assert got == shown


PRODUCERS: dict[str, Callable[[Block, Path], None]] = {
    "planted_scenario": planted_scenario,
    "planted_record": planted_record,
}


# ---------------------------------------------------------------- the tests

BLOCKS = parse_blocks(README.read_text(encoding="utf-8"))


def _kinds() -> list[str]:
    try:
        return classify(BLOCKS)
    except AssertionError:
        return ["?"] * len(BLOCKS)


KINDS = _kinds()
RUN = [b for b, k in zip(BLOCKS, KINDS) if k in ("transcript", "output-of", "commands")]


def test_every_block_is_checked_or_marked():
    kinds = classify(BLOCKS)
    assert len(kinds) == len(BLOCKS) >= 30
    # tests/test_readme_examples.py checks one request and response pair per eval operation
    from backstop.inputs import OPERATIONS
    assert kinds.count("eval-response") == kinds.count("eval-example") == len(OPERATIONS)


@pytest.mark.parametrize("block", RUN, ids=[b.id for b in RUN])
def test_readme_command_prints_what_the_readme_shows(block, tmp_path):
    cwd = workdir(tmp_path)
    setups = [v for k, v in block.marks if k == "setup"]
    if block.mark("commands"):
        run_transcript([], cwd, setups)
        for line in block.text.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                rc, out = run(line, cwd)
                assert rc == 0, f"{line}: exit {rc}\n{out}"
    elif block.mark("output-of"):
        run_transcript([(block.mark("output-of"), block.text.splitlines())], cwd, setups)
    else:
        run_transcript(transcript(block.text), cwd, setups)


PRODUCED = [b for b, k in zip(BLOCKS, KINDS) if k == "produced-by"]


@pytest.mark.parametrize("block", PRODUCED, ids=[b.id for b in PRODUCED])
def test_readme_in_process_sample(block, tmp_path):
    name = block.mark("produced-by")
    assert name in PRODUCERS, f"README line {block.line}: no producer {name!r} in {__file__}"
    PRODUCERS[name](block, tmp_path)


CHECKED = [b for b, k in zip(BLOCKS, KINDS) if k == "checked-by"]


@pytest.mark.parametrize("block", CHECKED, ids=[b.id for b in CHECKED])
def test_the_test_named_by_checked_by_exists_and_names_the_command(block):
    path = ROOT / block.mark("checked-by")
    assert path.is_file(), f"README line {block.line}: {path} does not exist"
    text = path.read_text(encoding="utf-8")
    steps = transcript(block.text)
    command = " ".join(steps[0][0].split()[:2])  # "backstop prove"
    assert command.startswith("backstop ")
    assert "README" in text and command in text, f"{path} does not name the README or {command!r}"


# ---------------------------------------------------------------- self-test of the checker

FAKE = """\
Some text.

```
$ echo one; echo two; echo three
one
...
three
$ echo $?
0
```

<!-- not-output: an input -->
```toml
a = 1
```

<!-- output-of: printf 'took 0.123 s (1,234 events/s)\\n' >&2 -->
```
took 9.9 s (7 events/s)
```
"""


def test_the_checker_can_fail(tmp_path):
    blocks = parse_blocks(FAKE)
    assert classify(blocks) == ["transcript", "not-output", "output-of"]
    run_transcript(transcript(blocks[0].text), tmp_path)       # the elision and $? work
    run_transcript([(blocks[2].mark("output-of"), blocks[2].text.splitlines())], tmp_path)  # times masked
    # a wrong line fails
    with pytest.raises(AssertionError, match="not what the command prints"):
        run_transcript(transcript(blocks[0].text.replace("three\n$", "four\n$")), tmp_path)
    # a wrong exit code shown by `echo $?` fails
    with pytest.raises(AssertionError):
        run_transcript(transcript("$ false\n$ echo $?\n0"), tmp_path)
    run_transcript(transcript("$ false   # exit 1\n$ echo $?\n1"), tmp_path)
    with pytest.raises(AssertionError):
        run_transcript(transcript("$ false   # exit 2"), tmp_path)
    # an elision does not match a missing line after it, nor an extra line at the end
    assert not matches(["a", "...", "c"], ["a", "b"])
    assert not matches(["a"], ["a", "b"])
    assert matches(["a", "..."], ["a"]) and matches(["...", "b"], ["a", "x", "b"])
    # a number that is not a time is not masked
    assert not matches(["45 records"], ["46 records"])
    # an unmarked block with output fails, and so does an unknown marker
    with pytest.raises(AssertionError, match="neither checked nor marked"):
        classify(parse_blocks(FAKE + "\n```\nerror: x: y\n```\n"))
    with pytest.raises(AssertionError, match="unknown marker"):
        classify(parse_blocks("<!-- fine: yes -->\n```\nx\n```\n"))


# ---------------------------------------------------------------- the quantity table of "Response"

def test_the_response_table_is_what_eval_answers_to_the_request_shown():
    """README "JSON formats for eval": the request block is ``examples/eval-okx-long.json`` (what the
    transcript of ``backstop eval`` runs), and its table of quantities is eval's answer: the first
    eighteen quantities in order, each value and its rules (the unit column is descriptive)."""
    from backstop.cli import evaluate_request
    from backstop.jsonio import loads
    md = README.read_text(encoding="utf-8")
    section = md[md.index("### Request"):md.index("### Operations")]
    request = next(b for b in parse_blocks(section) if b.lang == "json")
    assert json.loads(request.text) == json.loads((ROOT / "examples/eval-okx-long.json").read_text(encoding="utf-8"))
    rows = re.findall(r"^\| `(\w+)` \| `([^`]*)` \| [^|]* \| ([A-Z0-9, -]+) \|$", section, re.M)
    assert len(rows) == 18, rows  # "After these eighteen come ..."
    quantities = evaluate_request(loads(request.text))["results"][0]["quantities"]
    assert [name for name, _, _ in rows] == list(quantities)[:18]
    for name, value, rules in rows:
        assert json.loads(value) == quantities[name]["value"], name
        assert rules.split(", ") == quantities[name]["rules"], name


# ---------------------------------------------------------------- samples inline in the prose

def test_the_inline_samples_are_what_the_commands_print(tmp_path):
    """Two outputs quoted inside sentences: ``backstop --version``'s line, and two quantities of
    ``examples/eval-okx-inverse-short.json`` (README "Response")."""
    md = README.read_text(encoding="utf-8")
    version = re.search(r"`backstop --version` prints `([^`]+)`", md)
    assert version, "the README no longer quotes `backstop --version`"
    rc, out = run("backstop --version", workdir(tmp_path))
    assert (rc, out.strip()) == (0, version.group(1))
    quoted = re.search(r"`examples/eval-okx-inverse-short.json` gives `\"position_value\": \"([^\"]+)\"`"
                       r"[^`]*`\"maintenance_margin_units\": \"([^\"]+)\"`", md)
    assert quoted, "the README no longer quotes examples/eval-okx-inverse-short.json"
    from backstop.cli import evaluate_request
    from backstop.jsonio import loads
    q = evaluate_request(loads((ROOT / "examples/eval-okx-inverse-short.json").read_text(encoding="utf-8")))
    q = q["results"][0]["quantities"]
    assert (q["position_value"]["value"], q["maintenance_margin_units"]["value"]) == quoted.groups()
