"""Regions of the transition (eval ``transition``, issue 11, spec/99-sources.md C83).

The transition is :func:`backstop.reference.step.process_event` over a scenario.  Its regions are the
feasible combinations of the transition's OWN decisions -- each account's liquidation action at each
check (LIQ-004 for an isolated position, LIQ-008 with TRN-004's ``decide_cross_round`` for a cross
group), a partial step (LIQ-005, TRN-003's ``is_cross_partial_candidate``), a full liquidation
(LIQ-007), a refused cross round (TRN-004), whether the engine fills a takeover or a retry on the
book or leaves a remainder (ENG-001, ENG-006; TRN-005's ``is_market_open`` and ``is_retry_allowed``),
whether ADL fires (ADL-003) and on whom, and the fund's ADL state after the event (TRN-006's
``compute_adl_state``) -- each a named boolean (``Built.atoms``), over a BOUNDED whole-loop domain.

The domain is three whole-loop proofs' scenarios, reused as they are (their builders, not copies),
each row of its grid one part of the enumeration:

* the scenario of OBL-INV-024 (:class:`backstop.proofs.loop.LoopScenario`, every profile: accounts A
  long 4 lots, B short 3, C long 2, isolated at 20,000, D none; one bid and one ask level of 1 lot;
  two mark events, the second after the daily settlement), with every cash balance and the fund's
  opening balance a free whole amount >= 0 and one of its 16 price rows (marks, book prices, A's
  margin);
* the wide loop of INV-025 (:class:`backstop.proofs.loop_wide.WideScenario`, where the profile has
  partial liquidation and the drawdown trigger: okx): H long and S short isolated on P, X cross short
  P (tier 3) and long Q, D none; H's, S's and D's cash free, the fund's opening balance and X's cash
  row constants (100 rows);
* its two-candidate variant (:class:`backstop.proofs.loop_wide.TwoCandidateScenario`: X's Q leg at
  tier 3 too, 24 rows).

On each row the step function is run concolically (:func:`backstop.proofs.concolic.explore`: the
real ``process_event`` on numbers that carry Z3 terms, without the verdict cache) until its paths
cover the row; a decision's atom is the disjunction, over the paths that take it, of the path's
condition (the branch conditions the plumbing recorded) and, where the decision is a value the path
does not fix (the fund's ADL state, trigger (a) and (b) at an ADL check, the market closed at a
remainder), the term of that value.  The regions are then enumerated by
:func:`backstop.proofs.regions.enumerate_regions` as for any rule function composing others: one
region per feasible combination of the atoms.  A row whose exploration does not finish leaves the
domain and the enumeration is reported unfinished (``Built.unfinished``).

A witness is turned into an eval ``transition`` request: the scenario the loop builds on those
values (start, funds, accounts, marks, books and its events), so eval runs the same transition.
"""

from __future__ import annotations

import time
from fractions import Fraction
from typing import Any, Callable

import z3

from backstop.proofs import cache as _cache
from backstop.proofs.concolic import SymBool, SymFrac, SymInt, explore
from backstop.proofs.kernel import SEED
from backstop.proofs.loop import T0, T1, T2, LoopScenario, loop_instrument
from backstop.proofs.loop_wide import TwoCandidateScenario, WideScenario, two_candidate_instruments, wide_instruments
from backstop.proofs.regions import Built, Inputs, Spec
from backstop.reference import fundbook as FB
from backstop.reference import step as S
from backstop.reference.events import fund_key_of
from backstop.reference.profile import Profile
from backstop.reference.types import Instrument, format_exact

__all__ = ["SPECS", "decisions", "scenario_request", "isolated_spec", "wide_spec", "EXPLORE_S"]

EXPLORE_S = 300.0   # a wall-clock safety net per price row of the path exploration (hit: reported, never complete)


# ---------------------------------------------------------------- the decisions of one run

def _term(v: Any) -> Any:
    """A decision's value as a Z3 boolean: a plain bool, or the shadow of a shadowed one."""
    if isinstance(v, SymBool):
        return v.z
    if isinstance(v, z3.ExprRef):
        return v
    return z3.BoolVal(bool(v))


def _positive(x: Any) -> Any:
    if isinstance(x, (SymInt, SymFrac)):
        return SymBool(x.c > 0, x.z > 0)
    return x > 0


def decisions(out: dict[str, Any], instrument: str) -> dict[str, Any]:
    """The transition's decisions on one run of a scenario (``run``'s result: the states before and
    after each event and each event's records), as ``{words: value}`` where value is a bool or a
    shadowed bool.  The words name the event, the account and the decision only (no number), so a
    region's id is stable.  A decision not in the dict was not taken."""
    got: dict[str, list[Any]] = {}

    def add(words: str, value: Any = True) -> None:
        got.setdefault(words, []).append(value)

    for k, recs in enumerate(out["records"]):
        ev = f"event {k + 1}"
        before, after = out["states"][k], out["states"][k + 1]
        checks: dict[str, int] = {}
        adl: dict[str, int] = {}
        for r in recs:
            a = r.account
            if r.kind == "liquidation trigger":
                checks[a] = checks.get(a, 0) + 1
                add(f"{ev}: {a} check {checks[a]} ({r.get('margin_mode')}) decides {r.get('action')}")
            elif r.kind == "partial liquidation":
                add(f"{ev}: {a} partial step ({r.get('margin_mode')}, {r.instrument})")
            elif r.kind == "full liquidation":
                add(f"{ev}: {a} full liquidation ({r.get('margin_mode')}, {r.instrument})")
            elif r.kind == "cross partial refused":
                add(f"{ev}: {a} cross partial round refused, full instead")
            elif r.kind == "engine close":
                add(f"{ev}: {a} {r.get('why')} takeover filled on the book")
            elif r.kind == "bankrupt remainder":
                add(f"{ev}: {a} remainder left open")
                add(f"{ev}: {a} remainder left while the market is closed to the fund", r.get("in_adl_state"))
            elif r.kind == "adl trigger":  # the re-check (TRN-008) works the remainders once more: counted
                adl[a] = adl.get(a, 0) + 1
                n = f"{a}'s remainder" + (f" (check {adl[a]})" if adl[a] > 1 else "")
                add(f"{ev}: ADL fires on {n}")
                add(f"{ev}: trigger (a) at the ADL of {n}", _positive(r.get("uncovered")))
                add(f"{ev}: trigger (b) at the ADL of {n}", r.get("drawdown"))
            elif r.kind == "adl":
                add(f"{ev}: ADL reduces {a}")
            elif r.kind in ("liquidation surplus", "liquidation deficit", "uncovered deficit", "surplus to user"):
                add(f"{ev}: {r.kind}" + (f" ({a})" if a else ""))
        for acct in before.accounts:
            if any(q.instrument == instrument for q in acct.positions) and acct.id not in checks:
                add(f"{ev}: {acct.id} check 1 decides none")
        fund = fund_key_of(before.profile.instruments[instrument])
        add(f"{ev}: the fund is in the ADL state after the event", after.is_adl_active(fund))
    return {w: (vs[0] if len(vs) == 1 else SymBool(any(bool(_concrete(v)) for v in vs), z3.Or(*[_term(v) for v in vs])))
            for w, vs in got.items()}


def _concrete(v: Any) -> Any:
    return v.c if isinstance(v, SymBool) else v


# ---------------------------------------------------------------- a run as an eval request

def _coins(units: Any, scale: int) -> str:
    return format_exact(Fraction(units, scale))


def scenario_request(profile: Profile, start_ms: int, state: S.SimState, events: list[dict[str, Any]]) -> dict[str, Any]:
    """The eval ``transition`` request of the scenario whose initial state is ``state`` (concrete)
    and whose events are ``events`` (scenario event objects)."""
    ccy = profile.currencies
    accounts = []
    for a in state.accounts:
        acct: dict[str, Any] = {"id": a.id, "balances": {c: _coins(v, ccy[c].scale) for c, v in a.balances}}
        pos = []
        for q in a.positions:
            inst = profile.instruments[q.instrument]
            p: dict[str, Any] = {"instrument": q.instrument, "side": q.side.value, "size": format_exact(q.size),
                                 "entry_price": format_exact(q.entry_price), "margin_mode": q.margin_mode.value}
            if q.margin_mode.value == "isolated":
                p["margin"] = _coins(q.margin, inst.settle_currency.scale)
            pos.append(p)
        if pos:
            acct["positions"] = pos
        accounts.append(acct)
    funds = {}
    for key in sorted(state.funds.funds, key=lambda k: k.id):
        bal = FB.settled_balance(state.funds, key)
        if bal:
            funds[key.id] = _coins(bal, ccy[key.currency].scale)
    books = {iid: {"bids": [[format_exact(lv.price), format_exact(lv.size)] for lv in b.bids],
                   "asks": [[format_exact(lv.price), format_exact(lv.size)] for lv in b.asks]}
             for iid, b in state.books}
    return {"operation": "transition", "profile": profile.name,
            "scenario": {"start": start_ms, "funds": funds, "accounts": accounts,
                         "marks": {iid: format_exact(m) for iid, m in state.marks}, "books": books, "events": events}}


# ---------------------------------------------------------------- the spec

def _build(profile: Profile, sc: Any, instrument: Instrument, rows: tuple[int, ...],
           events: Callable[[dict[str, Any]], list[dict[str, Any]]], start_ms: int, words: str) -> Built:
    i = Inputs()
    scale = instrument.settle_currency.scale
    row = i.integer("price path")
    for n in sc.NAMES:
        i.money(n, scale)
    # the exploration's variables: whole numbers (the run reads ints), tied to the Inputs by its premises
    variables = {n: z3.ToReal(i.ints[n]) for n in ("price path",) + tuple(sc.NAMES)}
    premises = [z3.Or(*[row == g for g in rows])]
    per: dict[str, list[Any]] = {}
    parts, unfinished = [], []
    for g in rows:
        domain = i.premises + [row == g]
        deadline = time.perf_counter() + EXPLORE_S
        # without the verdict cache: a cached next input is a model of an earlier run, so the paths (and
        # the shape of the atoms, hence the solver's effort) would depend on what ran before (C83)
        was = _cache._ENABLED
        _cache.set_enabled(False)
        try:
            paths, status = explore(variables, domain, lambda vals: sc.run(vals, variables), seed=SEED, deadline=deadline,
                                    max_paths=sc.MAX_PATHS, fresh_after=getattr(sc, "FRESH_AFTER", None))
        finally:
            _cache.set_enabled(was)
        if status != "complete":
            unfinished.append(f"price row {g}: path exploration stopped after {len(paths)} paths: {status}")
            continue
        for pt in paths:
            for w, v in decisions(pt.result, instrument.id).items():
                per.setdefault(w, []).append(z3.And(row == g, pt.condition, _term(v)))
        parts.append((f"price row {g}", row == g))
    if unfinished:  # those rows leave the domain (and the enumeration is reported unfinished)
        done = [g for g in rows if f"price row {g}" in {w for w, _ in parts}]
        premises = [z3.Or(*[row == g for g in done])] if done else [z3.BoolVal(False)]
    atoms = [(w, z3.Or(*fs)) for w, fs in sorted(per.items())]

    def req(v: dict[str, Any]) -> dict[str, Any]:
        values = {"price path": v["price path"], **{n: v[n] for n in sc.NAMES}}
        out = sc.run(values)
        return scenario_request(profile, start_ms, out["states"][0], events(out))

    return Built(i, {}, [(words, row)], req, premises, atoms, parts, unfinished="; ".join(unfinished),
                 isolated_witness=True)  # the same witnesses whatever the process ran before (C83)


def _mark_events(inst: Instrument) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
    """The scenario events of a loop's run: its mark events on ``inst`` (at the times it names, else
    OBL-INV-024's T1 and T2)."""
    def events(out: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"time": t, "type": "mark", "instrument": inst.id, "price": format_exact(m)}
                for t, m in zip(out.get("times", (T1, T2)), out["marks"])]
    return events


def isolated_spec(rows: tuple[int, ...] | None = None) -> Spec:
    """The spec over OBL-INV-024's loop (:class:`~backstop.proofs.loop.LoopScenario`), every price
    row (or only ``rows``: the tests' subset)."""
    def build(profile: Profile, inst: Instrument, sign: int) -> Built:
        li = loop_instrument(profile)
        assert li is not None  # the spec applies only where there is one
        sc = LoopScenario(profile, li)
        return _build(profile, sc, li, rows if rows is not None else tuple(range(len(sc.GRID))), _mark_events(li), T0,
                      "OBL-INV-024's loop (A long 4 lots, B short 3, C long 2, isolated; D none), price row {}")
    return Spec("transition", "TRN-001", "process_event", build,
                applies=lambda p, i: loop_instrument(p) is not None, sided=False, unsided_as="scenario")


def wide_spec(cls: Any = WideScenario, rows: tuple[int, ...] | None = None) -> Spec:
    """The spec over a wide loop of INV-025 (:class:`~backstop.proofs.loop_wide.WideScenario` or
    :class:`~backstop.proofs.loop_wide.TwoCandidateScenario`): cross margin on two instruments, a
    tier-3 partial step, both ADL triggers; every row of its grid (or only ``rows``).  The fund's
    opening balance and X's cash are row constants there (C83); H's, S's and D's cash are free."""
    pick = two_candidate_instruments if cls is TwoCandidateScenario else wide_instruments

    def build(profile: Profile, inst: Instrument, sign: int) -> Built:
        insts = pick(profile)
        assert insts is not None  # the spec applies only where there are two
        sc = cls(profile, insts)
        name = "OBL-INV-025h's loop (X's two legs at tier 3)" if cls is TwoCandidateScenario else \
            "OBL-INV-025's wide loop (H, S isolated on P; X cross on P and Q; D none)"
        return _build(profile, sc, sc.p, rows if rows is not None else tuple(range(len(sc.GRID))), _mark_events(sc.p), T0,
                      name + ", row {}")
    return Spec("transition", "TRN-001", "process_event", build, applies=lambda p, i: pick(p) is not None, sided=False,
                unsided_as="scenario")


SPECS: list[Spec] = [isolated_spec(), wide_spec(WideScenario), wide_spec(TwoCandidateScenario)]
