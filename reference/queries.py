"""The oracle's query layer: one pure function per ``backstop eval`` operation.

Each query takes inputs that were already validated (``backstop/inputs.py`` reads the request and
checks it against the profile) and returns a tree of :class:`~backstop.reference.evaluate.Quantity`
leaves in dicts and lists.  Queries compute nothing of their own: every number and every decision
comes from a rule function of ``margin``, ``liquidation``, ``engine``, ``fund`` or ``adl``, and every
quantity carries the rule IDs of the functions that produced it.  Like the rule modules, this
module uses the numeric kernel only (``tests/test_kernel_lint.py``): quantities that exist only
sometimes go through :func:`~backstop.reference.evaluate.present`, and the few refusals that depend
on a computed value (a fund event whose checks fail) through
:func:`~backstop.reference.evaluate.require`.

Operations: :func:`query_margin` (``margin``, the default), :func:`query_cross` (``cross``),
:func:`query_liquidation` (``liquidation``), :func:`query_cross_liquidation` (``cross_liquidation``),
:func:`query_engine` (``engine``), :func:`query_fund_drawdown` (``fund_drawdown``),
:func:`query_fund_window` (``fund_window``), :func:`query_adl_ranking` and :func:`query_adl`
(``adl``).
"""

from __future__ import annotations

import itertools
from typing import Any

from backstop.reference import adl as A
from backstop.reference import liquidation as L
from backstop.reference import margin as M
from backstop.reference import num
from backstop.reference.evaluate import Quantity, evaluate_position, present, require
from backstop.reference.events import BalancePoint, FundKey
from backstop.reference.profile import PriceBasis, Profile
from backstop.reference.types import Instrument, Position, PositionTerms

__all__ = [
    "query_margin", "query_cross", "query_liquidation", "query_cross_liquidation", "query_engine",
    "query_fund_drawdown", "query_fund_window", "query_adl_ranking", "query_adl",
]

PRICE = "quote currency per base unit"
RATIO = "ratio"
BOOL = "bool"
SIDE_NAMES = {1: "long", -1: "short"}


def _money(inst: Instrument) -> str:
    c = inst.settle_currency
    return f"smallest units of {c.code} (10^-{c.decimals})"


def _q(name: str, value: Any, unit: str, *rules: str) -> Quantity:
    return Quantity(name, value, unit, tuple(rules))


def _d(*qs: Quantity) -> dict[str, Quantity]:
    return {x.name: x for x in qs}


def _mm_price(profile: Profile, pos: PositionTerms, mark: Any) -> Any:
    return num.ite(profile.margin.mm_price_basis is PriceBasis.MARK, mark, pos.entry)


def _at_price(inst: Instrument, profile: Profile, pos: PositionTerms, price: Any, defined: Any,
              label: str) -> dict[str, Quantity]:
    """The tier, rate and deduction the requirement uses when the mark is ``price`` (the tier is
    looked up at the price the profile values the requirement at: that mark, or the entry)."""
    at = _mm_price(profile, pos, num.ite(defined, price, pos.entry))  # an undefined price is never read
    return _d(
        _q(f"tier_at_{label}", present(defined, M.compute_tier_index(inst, pos.size, at)), "tier", "MRG-004", "LIQ-003"),
        _q(f"mmr_at_{label}", present(defined, M.compute_tier_mmr(inst, pos.size, at)), RATIO, "MRG-004", "LIQ-003"),
        _q(f"deduction_at_{label}", present(defined, M.compute_tier_deduction(inst, pos.size, at)), _money(inst),
           "MRG-004", "MRG-005"),
    )


# ================================================================ margin (isolated)

def query_margin(profile: Profile, pos: Position, mark: Any, leverage: Any = None) -> dict[str, Quantity]:
    """Operation ``margin``: the isolated margin quantities of one position at ``mark`` (today's
    eighteen), the initial margin, leverage and tier limits (MRG-009), and the tier, rate and
    deduction used at the mark and at the liquidation price.  ``leverage`` is the leverage the
    request gave instead of a margin (the margin was derived from it by MRG-009), or ``None``."""
    inst = profile.instrument(pos.instrument)
    rules = profile.margin
    t = pos.terms()
    money = _money(inst)
    out = {x.name: x for x in evaluate_position(profile, pos, mark)}
    price = _mm_price(profile, t, mark)
    cap = M.compute_tier_cap(inst, t.size, price)
    tier = M.compute_tier_index(inst, t.size, price)
    lp = M.compute_liquidation_price(inst, rules, t)
    out.update(_d(
        _q("margin", t.margin, money, *{True: ("MRG-003",), False: ("MRG-009", "NUM-002")}[leverage is None]),
        _q("requested_leverage", leverage, RATIO, "MRG-009"),
        _q("mm_price", price, PRICE, "MRG-005"),
        _q("tier_used", tier, "tier", "MRG-004", "MRG-005"),
        _q("mmr_used", M.compute_tier_mmr(inst, t.size, price), RATIO, "MRG-004", "MRG-005"),
        _q("deduction_used", M.compute_tier_deduction(inst, t.size, price), money, "MRG-004", "MRG-005"),
        _q("tier_imr", M.compute_tier_imr(inst, t.size, price), RATIO, "MRG-009"),
        _q("tier_max_leverage", M.compute_tier_max_leverage(inst, t.size, price), RATIO, "MRG-009"),
        _q("tier_cap", cap.get(), "tier basis (" + inst.tier_table.basis.value + ")", "MRG-009"),
        _q("tier_max_size", present(cap.defined, L.compute_max_size_in_tier(inst, tier, price)), "contracts",
           "MRG-009", "LIQ-005"),
        _q("initial_margin", M.compute_initial_margin(inst, rules, t, mark), money + " (exact)", "MRG-009"),
        _q("initial_margin_units", M.compute_initial_margin_units(inst, rules, t, mark), money + " (rounded up)",
           "MRG-009", "NUM-002"),
        _q("leverage", present(t.margin > 0, M.compute_leverage(inst, t)), RATIO, "MRG-009"),
        _q("within_max_leverage", M.is_within_max_leverage(inst, t), BOOL, "MRG-009"),
        _q("effective_leverage", present(M.compute_equity(inst, t, mark) > 0,
                                         A.compute_effective_leverage(inst, t, mark)), RATIO, "ADL-004"),
    ))
    out.update(_at_price(inst, profile, t, lp.value, lp.defined, "liquidation_price"))
    return out


# ================================================================ cross accounts

def _cross_groups(profile: Profile, positions: tuple[Position, ...]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for n, p in enumerate(positions):
        groups.setdefault(profile.instrument(p.instrument).settle_currency.code, []).append(n)
    return groups


def _cross_terms(profile: Profile, positions: tuple[Position, ...], marks: dict[str, Any],
                 idx: list[int]) -> tuple[tuple[tuple[Instrument, PositionTerms], ...], tuple[Any, ...]]:
    ips = tuple((profile.instrument(positions[n].instrument),
                 PositionTerms(positions[n].sign, positions[n].size, positions[n].entry_price, 0)) for n in idx)
    return ips, tuple(marks[positions[n].instrument] for n in idx)


def query_cross(profile: Profile, balances: dict[str, int], positions: tuple[Position, ...],
                marks: dict[str, Any]) -> dict[str, Any]:
    """Operation ``cross``: an account's cross positions, per settlement currency: cross equity,
    requirement, margin ratio, trigger and action (LIQ-008), the balance's shares (LIQ-009), and for
    every position its cross liquidation and bankruptcy prices with the others' marks held fixed
    (LIQ-010), with the tier, rate and deduction used at that price."""
    rules, lrules = profile.margin, profile.liquidation
    accounts = []
    for code, idx in sorted(_cross_groups(profile, positions).items()):
        ips, mk = _cross_terms(profile, positions, marks, idx)
        inst0 = ips[0][0]
        money = _money(inst0)
        balance = balances.get(code, 0)
        action = L.decide_cross_action(ips, rules, lrules, balance, mk)
        shares = L.compute_cross_shares(ips, balance, mk)
        per = []
        for j, (n, (inst, t), m, share) in enumerate(zip(idx, ips, mk, shares)):
            lp = L.compute_cross_liquidation_price(ips, rules, balance, mk, j)
            bp = L.compute_cross_bankruptcy_price(ips, rules, balance, mk, j)
            pm = money
            entry = _d(
                _q("unrealized_pnl", M.compute_unrealized_pnl(inst, t, m), pm, "MRG-002"),
                _q("position_value", M.compute_position_value(inst, t.size, m), pm, "MRG-001"),
                _q("tier", M.compute_tier_index(inst, t.size, _mm_price(profile, t, m)), "tier", "MRG-004"),
                _q("liquidation_requirement", M.compute_liquidation_requirement(inst, rules, t, m), pm, "LIQ-001"),
                _q("margin_share", share, pm + " (exact)", "LIQ-009"),
                _q("margin_with_others_fixed", L.compute_cross_margin_of(ips, rules, balance, mk, j), pm + " (exact)",
                   "LIQ-010"),
                _q("cross_liquidation_price", lp.get(), PRICE, "LIQ-010", "LIQ-003"),
                _q("cross_liquidation_price_on_tick",
                   present(lp.defined, num.round_to_step_toward(lp.value, inst.tick_size, t.sign)), PRICE,
                   "LIQ-010", "NUM-002"),
                _q("cross_bankruptcy_price", bp.get(), PRICE, "LIQ-010", "LIQ-002"),
                _q("cross_bankruptcy_price_on_tick",
                   present(bp.defined, num.round_to_step_toward(bp.value, inst.tick_size, t.sign)), PRICE,
                   "LIQ-010", "NUM-002"),
            )
            entry.update(_at_price(inst, profile, t, lp.value, lp.defined, "liquidation_price"))
            per.append({"position": n, "instrument": inst.id, "quantities": entry})
        accounts.append({"currency": code, "quantities": _d(
            _q("balance", balance, money, "LIQ-008"),
            _q("cross_equity", L.compute_cross_equity(ips, balance, mk), money, "LIQ-008"),
            _q("cross_requirement", L.compute_cross_requirement(ips, rules, mk), money, "LIQ-008", "LIQ-001"),
            _q("cross_tier_one_requirement", L.compute_cross_tier_one_requirement(ips, rules, mk), money,
               "LIQ-008", "LIQ-004"),
            _q("margin_ratio", L.compute_cross_margin_ratio(ips, balance, mk), RATIO, "LIQ-008", "MRG-007"),
            _q("required_margin_ratio", L.compute_cross_required_margin_ratio(ips, rules, mk), RATIO, "LIQ-008",
               "MRG-007"),
            _q("liquidatable", L.is_cross_liquidatable(ips, rules, balance, mk), BOOL, "LIQ-008"),
            _q("action", L.ACTION_NAMES[action], "action", "LIQ-008", "LIQ-004"),
        ), "positions": per})
    return {"accounts": accounts}


# ================================================================ liquidation

def _takeover(inst: Instrument, tk: L.Takeover, rules: tuple[str, ...]) -> dict[str, Quantity]:
    money = _money(inst)
    return _d(
        _q("side", SIDE_NAMES[tk.sign], "side", *rules),
        _q("size", tk.size, "contracts", *rules),
        _q("price", tk.price, PRICE + " (exact, not on the tick)", *rules, "LIQ-002"),
        _q("cash", tk.cash, money + " (exact)", *rules),
        _q("cash_units", tk.cash_units, money + " (rounded down)", *rules, "NUM-002"),
        _q("user_loss", tk.user_loss_units, money, *rules),
        _q("at_bankruptcy_price", tk.defined, BOOL, *rules),
        _q("close_fee", tk.close_fee, money + " (exact)", *rules, "LIQ-002"),
        _q("close_fee_units", tk.close_fee_units, money + " (rounded down)", *rules, "LIQ-002", "NUM-002"),
    )


def _step(inst: Instrument, st: L.PartialStep, turn: int) -> dict[str, Any]:
    money = _money(inst)
    return {"turn": turn, "quantities": _d(
        _q("tier_before", st.tier_before, "tier", "LIQ-005", "MRG-004"),
        _q("reduced", st.reduced, "contracts", "LIQ-005", "NUM-002"),
        _q("price", st.price, PRICE, "LIQ-005"),
        _q("realized_pnl_units", st.realized_units, money + " (rounded down)", "LIQ-005", "MRG-008"),
        _q("fee_units", st.fee_units, money + " (rounded up, capped)", "LIQ-005", "MRG-006"),
        _q("margin_share_units", st.margin_share_units, money + " (rounded up)", "LIQ-005"),
        _q("size_after", st.position.size, "contracts", "LIQ-005"),
        _q("margin_after", st.position.margin, money, "LIQ-005"),
        _q("tier_after", st.tier_after, "tier", "LIQ-005", "MRG-004"),
    )}


def query_liquidation(profile: Profile, pos: Position, mark: Any) -> dict[str, Any]:
    """Operation ``liquidation`` (isolated): the decision at ``mark`` (LIQ-004), every partial step
    of the loop (LIQ-005, LIQ-006), the decision it ends in, and the takeover of a full liquidation
    at the bankruptcy price (LIQ-007)."""
    inst = profile.instrument(pos.instrument)
    rules, lrules = profile.margin, profile.liquidation
    t = pos.terms()
    money = _money(inst)
    first = L.decide_action(inst, rules, lrules, t, mark)
    out = L.run_liquidation(inst, rules, lrules, t, mark)
    active = tuple(a for a, _ in out.steps)
    steps = [_step(inst, st, n) for n, (_, st) in enumerate(itertools.compress(out.steps, active))]
    full = out.action == L.FULL
    tk = L.compute_full_takeover(inst, rules, out.position, mark)
    return {
        "quantities": _d(
            _q("action", L.ACTION_NAMES[first], "action", "LIQ-004", "LIQ-001"),
            _q("tier_one_requirement", L.compute_tier_one_requirement(inst, rules, t, mark), money, "LIQ-004"),
            _q("partial_eligible", L.is_partial_eligible(inst, rules, lrules, t, mark), BOOL, "LIQ-004"),
            _q("max_partial_steps", L.max_partial_steps(inst), "steps", "LIQ-006"),
            _q("steps_taken", out.step_count, "steps", "LIQ-006"),
            _q("final_action", L.ACTION_NAMES[out.action], "action", "LIQ-006", "LIQ-004"),
            _q("size_after", out.position.size, "contracts", "LIQ-006"),
            _q("margin_after", out.position.margin, money, "LIQ-006"),
        ),
        "steps": steps,
        "takeover": present(full, _takeover(inst, tk, ("LIQ-007",))),
    }


def query_cross_liquidation(profile: Profile, balances: dict[str, int], positions: tuple[Position, ...],
                            marks: dict[str, Any]) -> dict[str, Any]:
    """Operation ``cross_liquidation``: per settlement currency, the cross decision (LIQ-008); on a
    PARTIAL decision the round of partial steps each position at tier 3 or above would take with
    its LIQ-009 share as margin, the balance after it and whether it is funded (LIQ-008, LIQ-009);
    on FULL the takeover of every position at the bankruptcy price of its share and the balances
    after (LIQ-009)."""
    from backstop.reference import transition as T  # imported when used: a margin eval starts without them
    rules, lrules = profile.margin, profile.liquidation
    accounts = []
    for code, idx in sorted(_cross_groups(profile, positions).items()):
        ips, mk = _cross_terms(profile, positions, marks, idx)
        money = _money(ips[0][0])
        balance = balances.get(code, 0)
        action = L.decide_cross_action(ips, rules, lrules, balance, mk)
        shares = L.compute_cross_shares(ips, balance, mk)
        steps, flags = [], []
        for (inst, t), m, share in zip(ips, mk, shares):
            carried = PositionTerms(t.sign, t.size, t.entry, share)
            steps.append(L.compute_partial_step(inst, rules, lrules, carried, m))
            flags.append(num.and_(action == L.PARTIAL, T.is_cross_partial_candidate(inst, rules, lrules, t, m)))
        partial = action == L.PARTIAL
        after_balance = L.compute_cross_partial_balance(balance, tuple(steps), tuple(flags))
        funded = L.is_cross_partial_funded(balance, tuple(steps), tuple(flags))
        round_action = T.decide_cross_round(action, funded, False)
        full = action == L.FULL
        takeovers = L.compute_cross_takeovers(ips, rules, balance, mk)
        after = dict(L.apply_cross_liquidation(tuple(sorted(balances.items())), code))
        accounts.append({
            "currency": code,
            "quantities": _d(
                _q("action", L.ACTION_NAMES[action], "action", "LIQ-008", "LIQ-004"),
                _q("round_action", L.ACTION_NAMES[round_action], "action (PARTIAL stays only when funded)", "TRN-004",
                   "LIQ-008"),
                _q("rounds_at_most", T.max_cross_rounds(tuple(profile.instruments.values())), "rounds", "TRN-004"),
                _q("balance", balance, money, "LIQ-008"),
                _q("balance_after_partial_round", present(partial, after_balance), money, "LIQ-009"),
                _q("partial_round_funded", present(partial, funded), BOOL, "LIQ-008"),
                _q("balances_after_full", present(full, {k: v for k, v in sorted(after.items())}), money, "LIQ-009"),
            ),
            "partial_candidates": [{"position": n, "quantities": _d(_q(
                "candidate", T.is_cross_partial_candidate(inst, rules, lrules, t, m), BOOL, "TRN-003"))}
                for n, (inst, t), m in zip(idx, ips, mk)],
            "partial_steps": [{"position": n, **_step(inst, st, 0)} for n, (inst, _), st, f
                              in itertools.compress(zip(idx, ips, steps, flags), flags)],
            "takeovers": present(full, [{"position": n, "quantities": _takeover(inst, tk, ("LIQ-009", "LIQ-007"))}
                                        for n, (inst, _), tk in zip(idx, ips, takeovers)]),
        })
    return {"accounts": accounts}


# ================================================================ the engine

def query_engine(profile: Profile, inst: Instrument, sign: int, size: Any, takeover_price: Any,
                 levels: tuple[Any, ...], budget: Any = None, entry: Any = None) -> dict[str, Any]:  # levels: engine.Level (imported when the query runs)
    """Operation ``engine``: the engine closes ``size`` contracts it holds on side ``sign`` (taken over
    at ``takeover_price``) against ``levels`` (ENG-001; within the fund's ``budget``, ENG-006, when
    one is given): fills, remainder, result (ENG-002), fee (ENG-003), the fund's and the venue's
    parts (ENG-004), the dust and, with the liquidated position's ``entry``, the counterparties'
    gain (ENG-005)."""
    from backstop.reference import engine as EN  # imported when used: a margin eval starts without them
    lrules = profile.liquidation
    money = _money(inst)
    walked = {True: lambda: EN.close_position(inst, lrules, sign, size, takeover_price, levels),
              False: lambda: EN.close_position_within(inst, lrules, sign, size, takeover_price, levels, budget)}
    walk_rule = {True: ("ENG-001",), False: ("ENG-006", "ENG-001")}[budget is None]
    res = walked[budget is None]()
    fills = [{"level": n, "quantities": _d(_q("size", f.size, "contracts", *walk_rule, "NUM-002"),
                                           _q("price", f.price, PRICE, *walk_rule))}
             for n, f in enumerate(res.fills)]
    cp = present(entry is not None, EN.compute_counterparty_pnl(inst, sign, num.ite(entry is None, takeover_price, entry),
                                                               res.fills))
    return {"fills": fills, "quantities": _d(
        _q("filled", num.sum_(f.size for f in res.fills), "contracts", *walk_rule),
        _q("remainder", res.remainder, "contracts", *walk_rule),
        _q("pnl", res.pnl, money + " (exact)", "ENG-002"),
        _q("result_units", res.result_units, money + " (rounded down)", "ENG-002", "NUM-002"),
        _q("surplus", res.result_units >= 0, BOOL, "ENG-002"),
        _q("filled_value", EN.compute_filled_value(inst, res.fills), money + " (exact)", "ENG-003", "MRG-001"),
        _q("fee_units", res.fee_units, money + " (rounded up, capped by the surplus)", "ENG-003", "NUM-002"),
        _q("fee_receiver", lrules.fee_receiver.value, "receiver", "ENG-004"),
        _q("fund_units", res.fund_units, money, "ENG-004"),
        _q("venue_units", res.venue_units, money, "ENG-004"),
        _q("user_units", res.user_units, money + " (surplus back to the user; 0 unless liquidation.fund_share caps it)", "ENG-004"),
        _q("dust", res.dust, money + " (exact, in [0, 1))", "ENG-005"),
        _q("counterparty_pnl", cp, money + " (exact)", "ENG-005"),
    )}


# ================================================================ the fund

def query_fund_drawdown(profile: Profile, history: tuple[BalancePoint, ...], now_ms: int, money: str,
                        uncovered: int = 0, unplaced: Any = 0, remainder: Any = 0,
                        was_active: bool = False) -> dict[str, Any]:
    """Operation ``fund_drawdown``: from a fund's balance history, at ``now_ms``: the window, the
    balance in force, the window's peak and the drawdown threshold and trigger (ADL-001); with the
    engine's ``uncovered`` deficit and ``unplaced`` contracts, trigger (a) (ADL-002); with the open
    ``remainder``, whether ADL fires and whether the fund stays in the ADL state (ADL-003)."""
    from backstop.reference import transition as T  # imported when used: a margin eval starts without them
    rules = profile.adl
    has_now, current = A.compute_balance_at(history, now_ms)
    has_peak, peak = A.compute_window_peak(rules, history, now_ms)
    has_avg, avg = A.compute_window_average(rules, history, now_ms)
    has_ref, ref = A.compute_drawdown_reference(rules, history, now_ms)
    trig_b = A.is_drawdown_trigger(rules, history, now_ms)
    trig_a = A.is_fund_insufficient(uncovered, unplaced)
    return {"quantities": _d(
        _q("window_start_ms", A.compute_window_start(rules, now_ms), "ms since the epoch (UTC)", "ADL-001"),
        _q("balance_at_now", present(has_now, current), money, "ADL-001"),
        _q("window_peak", present(has_peak, peak), money, "ADL-001"),
        _q("window_average", present(has_avg, avg), money + " (time-weighted, exact)", "ADL-001"),
        _q("drawdown_reference", rules.drawdown_reference.value, "peak or average", "ADL-001"),
        _q("drawdown_threshold", present(has_ref, A.compute_drawdown_threshold(rules, ref)), money + " (exact)",
           "ADL-001"),
        _q("drawdown_trigger", trig_b, BOOL, "ADL-001"),
        _q("fund_insufficient", trig_a, BOOL, "ADL-002"),
        _q("adl_fires", A.adl_fires(rules, history, now_ms, uncovered, unplaced, remainder), BOOL, "ADL-003"),
        _q("adl_state", T.compute_adl_state(was_active, (trig_a,), trig_b, (remainder,)), BOOL, "ADL-003", "TRN-006"),
        _q("market_open", T.is_market_open(T.compute_adl_state(was_active, (trig_a,), trig_b, (remainder,))), BOOL,
           "TRN-005"),
        _q("retry_allowed", T.is_retry_allowed(T.compute_adl_state(was_active, (trig_a,), trig_b, (remainder,)), trig_b),
           BOOL, "TRN-005"),
    )}


# Each step is given the fund module (FD): it is imported when a fund operation runs, so that a
# margin eval starts without the fund book and the journal (issue 14, start-up).
_FUND_STEPS = {
    "result": lambda FD, p, b, k, a, t: FD.step_result(p.fund, b, k, a, t),
    "fee": lambda FD, p, b, k, a, t: FD.step_fee(p.fund, b, k, a, t, p.liquidation.fee_receiver, FD.user_account("payer")),
    "top_up": lambda FD, p, b, k, a, t: FD.step_top_up(p.fund, b, k, a, t),
    "withdraw": lambda FD, p, b, k, a, t: FD.step_withdraw(p.fund, b, k, a, t),
}
_FUND_RULES = {"result": "INS-004", "fee": "INS-005", "top_up": "INS-006", "withdraw": "INS-007"}


def _fund_state(book: Any, key: FundKey, money: str) -> dict[str, Quantity]:
    """The balances and peaks of ``key``'s fund in ``book`` (a :class:`backstop.reference.fund.Book`)."""
    from backstop.reference import fund as FD  # imported when used: a margin eval starts without the fund book
    s, p = FD.settled_balance(book, key), FD.pending_balance(book, key)
    terms = book.funds[key]
    return _d(
        _q("settled", s, money, "INS-003", "JRN-002"),
        _q("pending", p, money, "INS-003", "JRN-002"),
        _q("available", FD.available_balance(s, p), money, "INS-003"),
        _q("withdrawable", FD.withdrawable(s, p), money, "INS-007"),
        _q("peak_settled", terms.peak_settled, money, "INS-010"),
        _q("peak_available", terms.peak_available, money, "INS-010"),
    )


def query_fund_window(profile: Profile, key: FundKey, start_ms: int, settled: int,
                      events: tuple[tuple[str, int, int], ...], money: str) -> dict[str, Any]:
    """Operation ``fund_window``: a fund opened at ``start_ms`` with a settled balance, then
    ``events`` (``(type, time_ms, amount)``: a liquidation or ADL ``result`` (signed), a ``fee``, a
    ``top_up``, a ``withdraw`` or a ``settle``) in order: after each, the settlement it ran first
    (INS-002, INS-008), what flowed in, was paid and stayed uncovered (INS-004..INS-007) and the
    balances and peaks (INS-003, INS-010).  An event whose checks fail (INS-009, INS-007) is refused
    naming it."""
    from backstop.reference import fund as FD  # imported when used: a margin eval starts without the fund book
    rules = profile.fund
    ccy = key.currency
    book = FD.Book({(FD.fund_account(key), ccy): settled, (FD.PLATFORM, ccy): -settled},
                   {key: FD.FundTerms(start_ms, settled, settled)})
    out = []
    for n, (kind, time_ms, amount) in enumerate(events):
        field = f"events[{n}]"
        settle_only = kind == "settle"
        step = {True: lambda: None, False: lambda: _FUND_STEPS[kind](FD, profile, book, key, amount, time_ms)}[settle_only]()  # type: ignore[no-untyped-call]  # a dict of lambdas (the rule functions' branch-free dispatch): the checker does not type their call
        for name, ok, rule, reason in {True: lambda: ((("time_ms", FD.time_in_order(book.funds[key].clock, time_ms),  # type: ignore[no-untyped-call]  # a dict of lambdas: see above
                                                         "INS-009", "earlier than the last event or settlement of this fund"),)),
                                       False: lambda: step.checks}[settle_only]():  # step is None only on a settle, whose branch does not read it
            require(ok, f"{field}.{name}", {"time_ms": time_ms, "amount": amount}.get(name), reason, rule)
        new_book, settlement, inflow, paid, uncovered = {  # type: ignore[no-untyped-call]  # a dict of lambdas: see above
            True: lambda: (lambda r: (r[0], r[2], 0, 0, 0))(FD.settle_fund(rules, book, key, time_ms)),
            False: lambda: (step.book, step.settlement, step.inflow, step.paid, step.uncovered),  # step is None only on a settle, whose branch does not read it
        }[settle_only]()
        rule = {True: "INS-008"}.get(settle_only, _FUND_RULES.get(kind, "INS-008"))
        q = _d(
            _q("window", FD.window_index(rules, time_ms), "window index", "INS-002"),
            _q("settlement_due", settlement.due, BOOL, "INS-008"),
            _q("settled_window", present(settlement.due, settlement.window), "window index", "INS-008", "INS-002"),
            _q("settlement_time_ms", present(settlement.due, settlement.time_ms), "ms since the epoch (UTC)", "INS-008"),
            _q("settlement_moved", settlement.moved, money, "INS-008"),
            _q("inflow", inflow, money, rule),
            _q("paid", paid, money, rule),
            _q("uncovered", uncovered, money, rule),
        )
        q.update(_fund_state(new_book, key, money))
        out.append({"event": n, "type": kind, "quantities": q})
        book = new_book
    return {"fund": _q("fund", key.id, "fund id (line/underlying/currency)", "INS-001"), "events": out}


# ================================================================ ADL

def _rank_side(inst: Instrument, profile: Profile, entries: tuple[A.RankEntry, ...], mark: Any) -> list[dict[str, Any]]:
    scored = tuple(A.RankEntry(e.account, e.instrument, e.position,
                               A.compute_adl_score(inst, profile.margin, profile.adl, e.position, mark)) for e in entries)
    ranked = A.rank_entries(scored)
    return [{"account": e.account, "quantities": _d(
        _q("score", e.score, RATIO, "ADL-004"),
        _q("rank", n, "0-based rank", "ADL-005"),
        _q("indicator", A.compute_adl_bucket(n, len(ranked)), "1..5 (5 first)", "ADL-005"),
        _q("pnl_fraction", A.compute_pnl_fraction(inst, e.position, mark), RATIO, "ADL-004"),
        _q("effective_leverage", A.compute_effective_leverage(inst, e.position, mark), RATIO, "ADL-004"),
    )} for n, e in enumerate(ranked)]


def query_adl_ranking(profile: Profile, inst: Instrument, entries: tuple[A.RankEntry, ...], mark: Any) -> dict[str, Any]:
    """Operation ``adl`` (ranking): every position's score (ADL-004), and per side the order and the
    1-5 indicator (ADL-005)."""
    longs = tuple(itertools.compress(entries, [e.position.sign == 1 for e in entries]))
    shorts = tuple(itertools.compress(entries, [e.position.sign == -1 for e in entries]))
    return {"long": _rank_side(inst, profile, longs, mark), "short": _rank_side(inst, profile, shorts, mark)}


def query_adl(profile: Profile, inst: Instrument, entries: tuple[A.RankEntry, ...], mark: Any, *,
              liquidated_account: str, liquidated_sign: int, remainder: Any, bankruptcy_price: Any,
              fund_available: int) -> dict[str, Any]:
    """Operation ``adl`` (allocation): the remainder of ``liquidated_account`` (side
    ``liquidated_sign``, taken over at ``bankruptcy_price``) allocated to the opposite side in rank
    order (ADL-006), the part executed at the mark (ADL-007), each counterparty's realized PnL,
    released margin and new position (ADL-008), the fund's result (ADL-009), and what the fund
    could not cover were the remainder closed at the mark (ADL-002)."""
    money = _money(inst)
    res = A.execute_adl(inst, profile.margin, profile.adl, liquidated_account=liquidated_account,
                        liquidated_sign=liquidated_sign, remainder=remainder, bankruptcy_price=bankruptcy_price,
                        mark=mark, fund_available=fund_available, candidates=entries)
    price = A.compute_adl_price(profile.adl, mark, bankruptcy_price)
    counter = [{"account": r.account, "quantities": _d(
        _q("rank", r.rank, "0-based rank", "ADL-005"),
        _q("indicator", r.bucket, "1..5 (5 first)", "ADL-005"),
        _q("score", r.score, RATIO, "ADL-004"),
        _q("reduction", r.reduction, "contracts", "ADL-006"),
        _q("at_mark", r.at_mark, "contracts", "ADL-007"),
        _q("at_bankruptcy_price", r.reduction - r.at_mark, "contracts", "ADL-007"),
        _q("realized_pnl_units", r.realized_units, money + " (rounded down)", "ADL-008", "MRG-008"),
        _q("released_margin_units", r.released_units, money + " (rounded down)", "ADL-008"),
        _q("size_after", r.new_position.size, "contracts", "ADL-008"),
        _q("margin_after", r.new_position.margin, money, "ADL-008"),
    )} for r in res.results]
    return {"ranking": query_adl_ranking(profile, inst, entries, mark), "counterparties": counter,
            "quantities": _d(
                _q("execution_price", price, PRICE, "ADL-007"),
                _q("reduced", res.reduced, "contracts", "ADL-006"),
                _q("unallocated", remainder - res.reduced, "contracts", "ADL-006"),
                _q("mark_quantity", res.mark_quantity, "contracts", "ADL-007"),
                _q("fund_result_units", res.fund_result_units, money + " (rounded down)", "ADL-009"),
                _q("uncovered_at_mark", A.compute_remainder_uncovered(inst, liquidated_sign, remainder, bankruptcy_price,
                                                                     mark, fund_available), money + " (rounded up)",
                   "ADL-002"),
            )}
