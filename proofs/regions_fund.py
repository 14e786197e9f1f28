"""Regions of the ``fund_window`` operation (issue 11, C77): a fund's events, one step at a time.

``backstop eval`` ``fund_window`` opens the profile's default fund at ``start_ms`` with a settled
balance (pending 0, peaks at the settled balance) and runs its events in order through the rule
functions of :mod:`backstop.reference.fund` (``reference/queries.py`` ``query_fund_window``): a
``result`` through ``step_result`` (INS-004), a ``fee`` through ``step_fee`` (INS-005, the profile's
fee receiver, paid by ``user:payer``), a ``top_up`` through ``step_top_up`` (INS-006), a
``withdraw`` through ``step_withdraw`` (INS-007), a ``settle`` through ``settle_fund`` (INS-008) with
``time_in_order`` (INS-009); every step settles a completed window first (INS-002, INS-008) and
raises the running peaks (INS-010).  Here those same functions are called on Z3 terms -- the
opening settled balance and every amount in whole smallest units, every time in whole ms -- on the
same opening book, and the regions are the feasible combinations of the comparisons in every
quantity eval reports (window, settlement due, what moved, inflow, paid, uncovered, the balances,
withdrawable, the peaks) and in every check the step returns (``time_in_order``,
``withdraw_allowed``).  A window index is a floor (INS-002): its boundary, an event exactly at the
settlement instant (16:00:00.000 HKT on okx, 00:00:00.000 UTC on binance and bybit), is a
condition of its own (``time = window_start(window_index(time))``, split = / !=).

The event list has a FIXED length (the bound, C77): ONE event of each of the five kinds after the
opening state, and TWO events: a ``result`` followed by one event of each kind (so that a window
crossing moves a non-zero pending net, and a settle, a withdrawal... meet a pending result).  In
the two-event lists the first event is accepted (its refusals are the one-event lists' regions).
A region on which a check fails (an event earlier than the clock, INS-009; a withdrawal above
the withdrawable, INS-007) is a refusal: eval refuses its witness, and its vector is an invalid
one (``error``: field, rule, type; no ``response``).  Negative magnitudes (fee, top-up, withdrawal)
are outside the domain: eval's reader refuses them before any rule runs (the invalid vectors).
"""

from __future__ import annotations

from typing import Any, Callable

import z3

from backstop.proofs.regions import Built, Inputs, Spec
from backstop.reference import fund as FD
from backstop.reference.events import fund_key_of
from backstop.reference.profile import Profile
from backstop.reference.types import Instrument

__all__ = ["SPECS", "KINDS", "RULES", "FUNCTIONS", "run_events"]

KINDS = ("result", "fee", "top_up", "withdraw", "settle")
RULES = {"result": "INS-004", "fee": "INS-005", "top_up": "INS-006", "withdraw": "INS-007", "settle": "INS-008"}
FUNCTIONS = {"result": "step_result", "fee": "step_fee", "top_up": "step_top_up", "withdraw": "step_withdraw",
             "settle": "settle_fund"}
PAYER = FD.user_account("payer")   # the fee payer query_fund_window names


def _step(profile: Profile, book: FD.Book, key: Any, kind: str, amount: Any, time: Any) -> tuple[Any, ...]:
    """One event through its rule function, as ``query_fund_window`` runs it: (book, settlement,
    inflow, paid, uncovered, checks)."""
    rules = profile.fund
    if kind == "settle":
        new, _, st = FD.settle_fund(rules, book, key, time)
        return new, st, 0, 0, 0, (("time_ms", FD.time_in_order(book.funds[key].clock, time), "INS-009"),)
    step = {"result": lambda: FD.step_result(rules, book, key, amount, time),
            "fee": lambda: FD.step_fee(rules, book, key, amount, time, profile.liquidation.fee_receiver, PAYER),
            "top_up": lambda: FD.step_top_up(rules, book, key, amount, time),
            "withdraw": lambda: FD.step_withdraw(rules, book, key, amount, time)}[kind]()
    return (step.book, step.settlement, step.inflow, step.paid, step.uncovered,
            tuple((f, ok, r) for f, ok, r, _ in step.checks))


def run_events(profile: Profile, key: Any, start: Any, settled: Any,
               events: list[tuple[str, Any, Any]]) -> tuple[dict[str, Any], list[Any], list[tuple[str, Any]]]:
    """The quantities eval reports for each event (``e<n>.<name>``), each event's checks (a list per
    event of ``(field, condition, rule)``), and probes for the words."""
    rules = profile.fund
    ccy = key.currency
    book = FD.Book({(FD.fund_account(key), ccy): settled, (FD.PLATFORM, ccy): -settled},
                   {key: FD.FundTerms(start, settled, settled)})
    outs: dict[str, Any] = {}
    checks: list[Any] = []
    probes: list[tuple[str, Any]] = []
    for n, (kind, amount, time) in enumerate(events):
        new, st, inflow, paid, unc, ck = _step(profile, book, key, kind, amount, time)
        s, p = FD.settled_balance(new, key), FD.pending_balance(new, key)
        terms = new.funds[key]
        window = FD.window_index(rules, time)
        at_start = time == FD.window_start(rules, window)   # INS-002: the floor's boundary
        e = f"e{n}."
        outs.update({e + "window": window, e + "at_window_start": at_start, e + "settlement_due": st.due,
                     e + "settled_window": st.window, e + "settlement_time_ms": st.time_ms, e + "moved": st.moved,
                     e + "inflow": inflow, e + "paid": paid, e + "uncovered": unc, e + "settled": s,
                     e + "pending": p, e + "available": FD.available_balance(s, p),
                     e + "withdrawable": FD.withdrawable(s, p), e + "peak_settled": terms.peak_settled,
                     e + "peak_available": terms.peak_available})
        for f, ok, r in ck:
            outs[f"{e}check.{f}.{r}"] = ok
        checks.append(list(ck))
        probes += [(f"event {n + 1} ({kind}) at a settlement instant: {{}}", at_start),
                   (f"event {n + 1} settlement due: {{}}", st.due)]
        probes += [(f"event {n + 1} {f} accepted ({r}): {{}}", ok) for f, ok, r in ck if f == "time_ms" or r == "INS-007"]
        if kind == "result":
            probes += [(f"event {n + 1} uncovered > 0: {{}}", unc > 0)]
        book = new
    return outs, checks, probes


def _spec(kinds: tuple[str, ...]) -> Spec:
    last = kinds[-1]
    function = "+".join(FUNCTIONS[k] for k in kinds)

    def build(profile: Profile, inst: Instrument, sign: int) -> Built:
        key = fund_key_of(next(iter(profile.instruments.values())))   # eval's default fund
        scale = profile.currencies[key.currency].scale
        i = Inputs()
        start = i.time("start")
        settled = i.money("settled", scale)
        events = []
        for n, k in enumerate(kinds):
            amount = 0 if k == "settle" else i.money(f"amount{n}", scale, low=None if k == "result" else 0)
            events.append((k, amount, i.time(f"time{n}")))
        outs, checks, probes = run_events(profile, key, start, settled, events)
        # the two-event lists: the first event is accepted (its refusals are the one-event lists' regions)
        premises = [ok for ck in checks[:-1] for _, ok, _ in ck if ok is not True]
        accepted = z3.And(*[ok if ok is not True else z3.BoolVal(True) for _, ok, _ in checks[-1]])

        def req(v: dict[str, Any]) -> dict[str, Any]:
            evs = []
            for n, k in enumerate(kinds):
                ev: dict[str, Any] = {"type": k, "time_ms": v[f"time{n}"]}
                if k != "settle":
                    ev["amount"] = v[f"amount{n}"]
                evs.append(ev)
            return {"operation": "fund_window", "profile": profile.name, "start_ms": v["start"],
                    "settled": v["settled"], "events": evs}
        # the regions of a two-event list are those of its LAST event's quantities and checks (they
        # read the state the first event left, so the first event's conditions they depend on are
        # among them); the first event's own quantities are the one-event lists' regions
        last_outs = {k: v for k, v in outs.items() if k.startswith(f"e{len(kinds) - 1}.")}
        last_probes = [pr for pr in probes if pr[0].startswith(f"event {len(kinds)} ")]
        return Built(i, last_outs, last_probes, req, premises, accepted=accepted, isolated_witness=True)
    return Spec("fund_window", RULES[last], function, build, sided=False)


# one event of each kind; a result followed by one event of each kind (the bound: C77)
SEQUENCES: tuple[tuple[str, ...], ...] = tuple((k,) for k in KINDS) + tuple(("result", k) for k in KINDS)
SPECS: list[Spec] = [_spec(ks) for ks in SEQUENCES]
