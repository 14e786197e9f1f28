"""The public face (issue 12): the package is ``mypy --strict`` clean.

``tools/typecheck.py`` builds the installed layout (backstop/, backstop/reference -> reference/,
backstop/proofs -> proofs/) as symlinks in a temporary folder and runs ``mypy --strict -p backstop``
there with pyproject's ``[tool.mypy]``; its exit status is mypy's (0: no errors, 1: errors, 2: a
crash or bad usage).  Skipped only when mypy is not installed (it is in the ``test`` extra).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed (pip install -e '.[test]')")
def test_mypy_strict_is_clean() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "typecheck.py")],
                          capture_output=True, text=True, timeout=600)
    # mypy's own summary, e.g. "Success: no issues found in 53 source files" or "Found 3 errors ..."
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "Success: no issues found" in proc.stdout
