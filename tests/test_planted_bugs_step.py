"""Planted bugs in the plumbing (reference/step.py, reference/fundbook.py), judged by the whole-loop
obligations OBL-INV-024 and OBL-INV-025a/b/c.

The rule modules have their own kill tables; these bugs sit in the code between the rules -- what
is credited to whom, what is booked to the fund, what stays open, in which order -- which only an
obligation that runs ``process_event`` itself can see.  The mutants are generated from the source
(operators, dropped statements, swapped arguments: :mod:`tests.mutation_plumbing`), screened
concretely, and proved: a mutant is *killed* by the first obligation that returns a counterexample
whose replay through the concrete (mutated) reference is confirmed.

Two mutants run in the default suite (a few seconds each); the whole table is gated by
``BACKSTOP_MUTATION_STEP=1`` and is best run as a script, in the background::

    .venv/bin/python tests/test_planted_bugs_step.py [--only TEXT ...] [--max N] [--out FILE] [--resume]

which screens every mutant, proves them (those the screen saw break a claim first, those no
screening input distinguishes last), checks the survivors for equivalence, and prints the table.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mutation_plumbing as MP  # noqa: E402

from backstop.proofs.kernel import prove  # noqa: E402
from backstop.reference.profile import load_profile  # noqa: E402

FULL = os.environ.get("BACKSTOP_MUTATION_STEP") == "1"

MUTANTS = MP.generate()
BY_KEY = {m.key: m for m in MUTANTS}


def _find(function: str, op: str, before: str, after: str = "") -> MP.Mutant:
    """A mutant by what it changes (keys carry line numbers, which move with every edit)."""
    hits = [m for m in MUTANTS if m.function == function and m.op == op and before in m.before and after in m.after]
    assert len(hits) == 1, f"{function} {op} {before!r}: {len(hits)} mutants match"
    return hits[0]


# the default suite: two mutants whose kills are fast (the broken row is explored first)
DEFAULT = (
    ("_deleverage", "drop", "state = _with_account(state, _replace_position(acct, q, new))", ""),  # ADL never reduces the counterparty
    ("_engine_walk", "swap", "Book(new_levels, book.asks)", ""),  # the consumed bids replace the asks
)

# Survivors of the full run (okx, 2026-12-01), each with its reason; filled from the table's run.
# key -> reason.  A survivor is a hole: the claim that would kill it is in the report.
SURVIVORS: dict[str, str] = {}

# Mutants of functions the obligations never call (no path of their domains reaches them).
UNREACHED_REASON = ("no obligation feeds this code: OBL-INV-024/025 run mark events only, so book, top-up, "
                    "withdrawal and settle events, and the fund views no step calls, are outside every domain")


def _params() -> list[Any]:
    default = {_find(*d).key for d in DEFAULT}
    out = []
    for m in MUTANTS:
        marks = []
        if m.key in SURVIVORS:
            marks.append(pytest.mark.xfail(strict=True, reason=f"HOLE: {SURVIVORS[m.key]}"))
        if m.key not in default and not FULL:
            marks.append(pytest.mark.skip(reason="the whole table is gated by BACKSTOP_MUTATION_STEP=1"))
        out.append(pytest.param(m.key, marks=marks, id=m.key))
    return out


@pytest.mark.rules("INV-024", "INV-025")
@pytest.mark.parametrize("key", _params())
def test_plumbing_mutant_is_killed_by_a_whole_loop_obligation(key: str) -> None:
    o = MP.judge(BY_KEY[key], check_equivalence=False)
    assert o.verdict == "killed", f"{key}: {o.verdict} (screen {o.screen}; {o.detail[:300]}; {o.attempts})"
    assert o.killed_by.startswith(("OBL-INV-024", "OBL-INV-025"))


def test_the_generator_covers_every_operator_and_every_mutant_compiles() -> None:
    ops = collections.Counter(m.op for m in MUTANTS)
    for op in ("cmp", "arith", "not", "bool", "cond", "drop", "swap"):
        assert ops[op] > 0, op
    assert {m.module for m in MUTANTS} == {"step", "fundbook"}
    for m in MUTANTS:
        assert callable(MP.compile_mutant(m)), m.key
    assert len(BY_KEY) == len(MUTANTS), "two mutants share a key"


def test_the_targets_and_the_skipped_functions_name_real_functions() -> None:
    """A refactor of step.py or fundbook.py must update the table, not silently mutate nothing."""
    for mod, names in MP.TARGETS.items():
        for n in names:
            assert callable(getattr(MP.MODULES[mod], n)), f"{mod}.{n}"
    for mod, names in MP.SKIPPED.items():
        for n in names:
            if not n.endswith(".*"):
                assert callable(getattr(MP.MODULES[mod], n)), f"{mod}.{n}"
    for key in SURVIVORS:
        assert key in BY_KEY, f"a listed survivor no longer exists: {key}"


def test_a_planted_mutant_is_undone_and_the_oracle_stays_pristine() -> None:
    from backstop.proofs import loop as PL
    from backstop.reference import fundbook as FB
    m = _find("available_balance", "swap", "R.F.balance_in_view(view, R.F.settled_balance")
    original = FB.available_balance
    with MP.planted(m):
        assert FB.available_balance is not original
        assert PL.FB.available_balance is not FB.available_balance  # the claim reads the pristine view
    assert FB.available_balance is original and PL.FB is FB


def test_the_unmutated_plumbing_passes_the_screen() -> None:
    """The baseline: every screening input keeps the claims of the unmutated code (else every
    mutant would look killed)."""
    profile = load_profile("okx")
    inputs = MP._inputs(profile) if FULL else {ob: MP._fixed_inputs(*MP.scenario(profile, ob))[:4]
                                               for ob in MP.OBLIGATIONS}
    with MP.planted(None):
        for ob_id in MP.OBLIGATIONS:
            sc, _ = MP.scenario(profile, ob_id)
            for v in inputs[ob_id]:
                assert sc.claim(sc.run(v), symbolic=False) is True, (ob_id, v)


# ---------------------------------------------------------------- the table, as a script

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", default=[], help="mutants whose key contains one of these texts")
    ap.add_argument("--max", type=int, default=0, help="prove at most N mutants (after screening all)")
    ap.add_argument("--profile", default="okx")
    ap.add_argument("--out", default="/tmp/backstop-mutstep-table.jsonl", help="one JSON line per judged mutant")
    ap.add_argument("--resume", action="store_true", help="skip mutants already in --out")
    ap.add_argument("--shard", default="0/1", help="i/n: judge every n-th mutant from the i-th")
    ap.add_argument("--no-prove-same", action="store_true", help="do not prove mutants no screening input distinguishes")
    ap.add_argument("--no-equivalence", action="store_true", help="do not check survivors for equivalence")
    ap.add_argument("--screen-only", action="store_true")
    a = ap.parse_args(argv)
    t_start = time.perf_counter()
    profile = load_profile(a.profile)
    ms = [m for m in MUTANTS if not a.only or any(o in m.key for o in a.only)]
    i, n = (int(x) for x in a.shard.split("/"))
    ms = ms[i::n]
    out = Path(a.out)
    done: dict[str, dict[str, Any]] = {}
    if a.resume and out.exists():
        for line in out.read_text().splitlines():
            d = json.loads(line)
            done[d["key"]] = d
    print(f"{len(MUTANTS)} mutants generated; {len(ms)} selected; {len(done)} already judged", flush=True)
    MP._baseline(profile)
    screened: list[tuple[MP.Mutant, str, dict[str, int], str, float]] = []
    for m in ms:
        if m.key in done:
            continue
        t0 = time.perf_counter()
        try:
            kind, rows, crash = MP.screen(m, profile)
        except Exception as e:  # noqa: BLE001
            kind, rows, crash = "crash", {}, f"harness: {type(e).__name__}: {e}"
        screened.append((m, kind, rows, crash, time.perf_counter() - t0))
        print(f"screen {kind:12s} {time.perf_counter() - t0:5.1f}s {m.key}", flush=True)
    print(f"screened {len(screened)} in {time.perf_counter() - t_start:.0f}s: "
          f"{dict(collections.Counter(k for _, k, *_ in screened))}", flush=True)
    if a.screen_only:
        return 0
    rank = {"breaks-claim": 0, "crash": 1, "unreached": 2, "differs": 3, "same": 4}
    screened.sort(key=lambda x: rank[x[1]])
    proved = 0
    with out.open("a") as f:
        for m, kind, rows, crash, secs in screened:
            o = MP.Outcome(m.key, "", screen=kind, screen_row=rows, detail=crash, seconds=round(secs, 1))
            if kind == "crash":
                o.verdict = "error"
            elif kind == "unreached":
                o.verdict, o.detail = "unreached", UNREACHED_REASON
            elif kind == "same" and a.no_prove_same:
                o.verdict, o.detail = "not proved", "no screening input distinguishes it (--no-prove-same)"
            else:
                if a.max and proved >= a.max:
                    continue
                proved += 1
                t0 = time.perf_counter()
                verdict, by, attempts, detail = MP.prove_mutant(m, profile, rows)
                o.verdict, o.killed_by, o.attempts, o.detail = verdict, by, attempts, detail or crash
                if verdict == "survived" and not a.no_equivalence:
                    eq, why = MP.equivalent(m, profile)
                    o.verdict = "equivalent" if eq is True else "survived"
                    o.detail = why
                o.seconds = round(secs + time.perf_counter() - t0, 1)
            f.write(json.dumps(o.as_json()) + "\n")
            f.flush()
            print(f"{o.verdict:10s} {o.killed_by:22s} {o.seconds:6.1f}s {m.key}", flush=True)
            done[m.key] = o.as_json()
    summary(done)
    print(f"total wall time {time.perf_counter() - t_start:.0f}s", flush=True)
    return 0


def summary(done: dict[str, dict[str, Any]]) -> None:
    c = collections.Counter(d["verdict"] for d in done.values())
    by = collections.Counter(d["killed_by"] for d in done.values() if d["verdict"] == "killed")
    print("verdicts:", dict(c))
    print("killed by:", dict(by))
    killed = c["killed"]
    denom = killed + c["survived"] + c["unreached"]
    if denom:
        print(f"kill rate (non-equivalent, errors apart): {killed}/{denom} = {100 * killed / denom:.1f} %")
    for d in done.values():
        if d["verdict"] not in ("killed",):
            print(f"  {d['verdict']:10s} [{d['screen']}] {d['key']}  -- {d['detail'][:160]}")


if __name__ == "__main__":
    raise SystemExit(main())
