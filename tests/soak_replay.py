"""Replay one event of the seeded soak (bench/bench_soak.py, seed 13) for a test: the world of global
episode ``episode`` and its events up to ``event``, as the soak runs them (a refused withdrawal,
INS-007, is skipped without changing the state)."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

from backstop.reference import step as S
from backstop.reference.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[1]


def replay(episode: int, event: int, accounts: int = 120, seed: int = 13) -> tuple[Any, Any, Any, tuple[Any, ...]]:
    """(the state before, the event, the state after, its records) of the soak's ``event`` in ``episode``."""
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        import bench_soak as B
    finally:
        sys.path.remove(str(ROOT / "bench"))
    world = B.World(random.Random(f"{seed}:{episode}"), accounts, 1_795_766_399_000 + (episode % 50) * 400 * 86_400_000)
    for k in range(event + 1):
        ev = world.event()
        before = world.state
        try:
            after, recs = S.process_event(before, ev)
        except InvalidInput:
            continue  # a refused withdrawal (INS-007), as the soak counts it
        if k == event:
            return before, ev, after, recs
        world.state = after
    raise AssertionError("the episode is shorter than expected")
