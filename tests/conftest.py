"""Shared test configuration: the shipped profiles as fixtures, and the Hypothesis settings.

``tests/`` is put on ``sys.path`` so that test modules in ``tests/unit`` and ``tests/property``
can ``import strategies`` (the reusable Hypothesis strategies in ``tests/strategies.py``).

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
