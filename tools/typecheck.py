#!/usr/bin/env python3
"""`mypy --strict -p backstop` over the package as it is installed.

pyproject.toml maps `backstop.reference` -> reference/ and `backstop.proofs` -> proofs/
(`[tool.setuptools] package-dir`), which mypy cannot follow from the source tree. This script builds
that layout as a tree of symlinks in a temporary folder, runs mypy there with the repository's
`[tool.mypy]` configuration, and exits with mypy's status (0: no errors).

Usage: python tools/typecheck.py [extra mypy arguments]
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# package name (relative to the tree) -> source folder in the repository
PACKAGES = {
    "backstop": ROOT / "backstop",
    "backstop/reference": ROOT / "reference",
    "backstop/proofs": ROOT / "proofs",
    "backstop/proofs/derivations": ROOT / "proofs" / "derivations",
}


def build_tree(dest: Path) -> None:
    """Symlink every module and py.typed of each package into dest, in the installed layout."""
    for rel, src in PACKAGES.items():
        target = dest / rel
        target.mkdir(parents=True, exist_ok=True)
        for f in sorted(src.iterdir()):
            if f.is_file() and (f.suffix == ".py" or f.name == "py.typed"):
                os.symlink(f, target / f.name)


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="backstop-typecheck-") as tmp:
        tree = Path(tmp)
        build_tree(tree)
        cmd = [
            sys.executable, "-m", "mypy",
            "--config-file", str(ROOT / "pyproject.toml"),
            "--cache-dir", str(tree / ".mypy_cache"),  # never a cache in the repository
            "--strict", "-p", "backstop", *argv,
        ]
        return subprocess.call(cmd, cwd=tree)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
