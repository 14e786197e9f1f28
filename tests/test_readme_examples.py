"""README.md's eval examples cannot go stale: every request of the "Operations" section is run
through ``backstop eval`` and every value its response excerpt shows is compared.

An example is marked ``<!-- eval-example: examples/<file>.json -->``, followed by two ``json``
blocks: the request (which must be the example file's request) and a response excerpt.  An excerpt
is a sub-tree of the response: every key it shows must be in the response with the same value
(quantities may leave out ``unit`` and ``rules``; a list is compared element by element from the
start, and the response's list may be longer than the excerpt's).  The ``--jsonl`` example is run too.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from backstop.cli import _eval_jsonl, evaluate_request
from backstop.jsonio import loads

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
MARK = re.compile(r"<!-- eval-example: (\S+) -->\s*```json\n(.*?)```\s*```json\n(.*?)```", re.S)
EXAMPLES = MARK.findall(README)


def _sub(excerpt, actual, path="$"):
    """Every value of ``excerpt`` is in ``actual`` at the same place."""
    if isinstance(excerpt, dict):
        assert isinstance(actual, dict), f"{path}: expected an object, got {actual!r}"
        for k, v in excerpt.items():
            assert k in actual, f"{path}.{k}: not in the response"
            _sub(v, actual[k], f"{path}.{k}")
    elif isinstance(excerpt, list):
        assert isinstance(actual, list), f"{path}: expected a list, got {actual!r}"
        assert len(excerpt) <= len(actual), f"{path}: the excerpt lists {len(excerpt)}, the response {len(actual)}"
        for n, (e, a) in enumerate(zip(excerpt, actual)):
            _sub(e, a, f"{path}[{n}]")
    else:
        assert excerpt == actual, f"{path}: README shows {excerpt!r}, eval answers {actual!r}"


def test_the_readme_has_one_example_per_operation():
    from backstop.inputs import OPERATIONS
    ops = {json.loads(req).get("operation", "margin") for _, req, _ in EXAMPLES}
    assert ops == set(OPERATIONS)


@pytest.mark.parametrize("file,request_text,excerpt", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_readme_example(file, request_text, excerpt):
    shown = json.loads(request_text)
    assert json.loads((ROOT / file).read_text(encoding="utf-8")) == shown, f"{file} differs from the README"
    response = evaluate_request(loads(request_text))
    _sub(json.loads(excerpt), response)


def test_readme_excerpt_check_can_fail():
    with pytest.raises(AssertionError):
        _sub({"a": {"value": "1"}}, {"a": {"value": "2", "unit": "u"}})
    with pytest.raises(AssertionError):
        _sub({"b": 1}, {"a": 1})


def test_readme_jsonl_example():
    block = README[README.index("### `backstop eval --jsonl`"):]
    cmd, out = re.search(r"\$ printf '%s\\n' '(.*?)' \| backstop eval --jsonl\n(.*?)\n", block).groups()
    got = io.StringIO()
    assert _eval_jsonl(io.StringIO(cmd + "\n"), got) == 2
    assert got.getvalue().strip() == out
