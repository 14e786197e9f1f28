"""The README's `backstop prove` sample is produced by the command it shows (times masked), and
`--json -` writes clean JSON to stdout with the human lines on stderr."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CMD = "backstop prove --only OBL-INV-007 OBL-NUM-001"


def _mask(text: str) -> list[str]:
    """Times vary between runs; the column widths and everything else do not."""
    return [re.sub(r"\d+\.\d\ds", "T", line).rstrip() for line in text.strip().splitlines()]


def _readme_sample() -> str:
    block = README[README.index("$ " + CMD + "\n"):]
    return block[len("$ " + CMD + "\n"):block.index("```")]


def _run(*extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "backstop", *CMD.split()[1:], *extra],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_the_readme_prove_sample_is_what_the_command_prints():
    r = _run("--no-cache")
    assert r.returncode == 0, r.stderr
    assert _mask(r.stdout) == _mask(_readme_sample())
    # the counter: by hand, OBL-NUM-001 is one instance and OBL-INV-007 one per okx instrument (3)
    assert [line.split("]")[0] + "]" for line in r.stdout.splitlines() if line.startswith("[")] == \
        ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]


def test_json_dash_writes_only_json_to_stdout_and_the_progress_to_stderr():
    r = _run("--json", "-")
    assert r.returncode == 0, r.stderr
    records = json.loads(r.stdout)  # nothing but the JSON on stdout
    assert sorted(x["instance"] for x in records) == sorted(
        ["OBL-NUM-001", "OBL-INV-007[BTC-USDT-SWAP]", "OBL-INV-007[BTC-USD-SWAP]", "OBL-INV-007[ETH-USDT-SWAP]"])
    assert "[4/4] proved" in r.stderr and "4 obligation instance(s)" in r.stderr


def test_json_and_junit_cannot_both_go_to_stdout():
    r = _run("--json", "-", "--junit", "-")
    assert r.returncode == 2 and "only one of --json and --junit" in r.stderr
    assert "Traceback" not in r.stderr
