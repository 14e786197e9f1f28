"""Shared test configuration: the shipped profiles as fixtures, and the Hypothesis settings.

``tests/`` is put on ``sys.path`` so that test modules in ``tests/unit`` and ``tests/property``
can ``import strategies`` (the reusable Hypothesis strategies in ``backstop/strategies.py``).

Hypothesis profiles (choose with ``HYPOTHESIS_PROFILE=...``):

* ``backstop`` (default): ``deadline=None`` (Z3 calls have no stable timing), modest example
  counts set per test, no health check on slow data generation;
* ``thorough``: ten times the examples, for a long run before a release.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

settings.register_profile(
    "backstop", deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "thorough", parent=settings.get_profile("backstop"), max_examples=2000,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "backstop"))


@pytest.fixture(scope="session")
def profiles():
    """Every shipped profile, by name."""
    from strategies import PROFILES
    return PROFILES


@pytest.fixture(scope="session")
def okx(profiles):
    return profiles["okx"]


@pytest.fixture(scope="session")
def binance(profiles):
    return profiles["binance"]


@pytest.fixture(scope="session")
def bybit(profiles):
    return profiles["bybit"]


# Files whose tests take the longest (measured with ``--durations``): run first, so that under
# ``pytest -n`` (``make test``) the long ones start at once and the short ones fill the gaps.
SLOW_FIRST = (
    "tests/test_proofs.py",
    "tests/test_proofs_partial_variants.py",
    "tests/test_planted_bugs",
    "tests/stateful/",
    "tests/property/",
)


def pytest_collection_modifyitems(session, config, items):
    def rank(item) -> int:
        path = Path(str(item.fspath)).resolve().relative_to(TESTS_DIR.parent).as_posix()
        for i, prefix in enumerate(SLOW_FIRST):
            if path.startswith(prefix):
                return i
        return len(SLOW_FIRST)
    items.sort(key=rank)  # stable: the order within a file is kept
