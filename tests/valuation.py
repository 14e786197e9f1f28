"""An independent check of one transition of the whole loop (shared by the state machine
``tests/stateful/test_process_machine.py`` and the soak ``bench/bench_soak.py``).

Nothing here calls a rule function of ``reference/``: the numbers are recomputed from the spec's
formulas, and the state is read only as data (balances, positions, marks, remainders, the fund
ledger's balances and balance history, the records of the event).  ``check_transition(before,
event, after, records)`` returns a list of :class:`Violation`; empty means every check holds.

The checks, after every event:

* **INV-022 conservation, to the last unit, per currency.**  The venue's books valued at the
  marks of the state after the event -- every account's cash, every isolated margin, every
  position's unrealized PnL, every engine remainder valued at its takeover price, every fund's
  available balance (settled + pending), the venue's rounding dust and the venue's fee account of
  the fund ledger -- change by exactly the engine's fills against the outside book
  (``side * size * cv * (g(fill) - g(mark)) * 10**decimals``, ``g(p) = p`` linear, ``-1/p``
  inverse; ``side`` +1 for a sell), plus a platform top-up, minus a platform withdrawal.  Exact
  rationals: no tolerance.  UPnL is written here from the definitions: linear
  ``s * n * cv * (mark - entry)``, inverse ``s * n * cv * (1/entry - 1/mark)`` (MRG-008), in the
  settlement currency's smallest units.
* **INV-009** every fund's settled and available balances >= 0.
* **ADL-003** the ADL state of every fund: unchanged by an event that is not a check of it (a
  check is a mark or book event of one of its instruments); after a check, in the state if ADL
  fired in it, or an open remainder of the instrument has a positive uncovered amount at the mark
  (trigger (a), ADL-002, recomputed here), or the drawdown trigger (b) holds (ADL-001, recomputed
  here over the fund's balance history), or the fund was in the state and a remainder is still
  open; out of it when none of these can hold.  An ``adl trigger`` record's uncovered amount must
  be the one recomputed here.  And no engine fill for a fund while it is in the ADL state (seed
  003: "no longer place liquidation orders on the market").
* **ADL-003 / ADL-008 no socialization** an account that holds no position settled in a currency
  keeps its balance in that currency exactly; no position is opened, grown, moved to another side
  or re-priced; a position whose size did not change keeps its margin.
* **INV-026 no ADL fill realizes a loss** (C71): every ``adl`` record's realized PnL is >= 0 and
  is MRG-008's on the counterparty's entry, at the mark and at the bankruptcy price for the sizes
  the record states.
* **INV-021 / INV-003 loss bound** an account that was liquidated (a position of it shrank or
  vanished, and it was not an ADL counterparty in the event) loses, per currency, at most the
  margin of what was liquidated: the isolated margins of the positions that shrank, plus its cash
  balance when a cross position shrank (the cross margin is the balance).  Its cash balance is
  untouched when only isolated positions were liquidated, and never below 0.

Known defects of today's code (issue 13) are tagged on the violation (``known``), so the callers
can count them apart and the lead can make them strict after the fix: see ``KNOWN_DEFECTS``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Iterable

__all__ = ["KNOWN_DEFECTS", "Violation", "upnl_units", "fill_gain_units", "books_value",
           "uncovered_units", "check_transition", "fund_ids"]

# Issue 13 defects the lead is fixing.  A violation that only these explain carries the tag; once a
# defect is fixed, its tag must disappear (the strict tests in tests/stateful/ then pass: remove
# their xfail marker).
KNOWN_DEFECTS: dict[str, str] = {
    # none open.  Fixed in issue 13 (their checks are strict now): "trigger-a-state" (trigger (a)
    # never set the ADL state), "book-without-mark" (a book before any mark raised KeyError),
    # "adl-residue" (ADL's rounding residue was booked nowhere; INV-019: it is the venue's).
}

_SETTLE = "settle"


@dataclass(frozen=True)
class Violation:
    rule: str
    message: str
    known: str | None = None   # a key of KNOWN_DEFECTS when only that defect explains it

    def __str__(self) -> str:
        tag = f" [known: {self.known}]" if self.known else ""
        return f"{self.rule}: {self.message}{tag}"


# ---------------------------------------------------------------- the spec's formulas

def _is_linear(inst: Any) -> bool:
    return inst.kind.value == "linear"


def _scale(inst: Any) -> int:
    return 10 ** inst.settle_currency.decimals


def upnl_units(inst: Any, sign: int, size: Fraction, entry: Fraction, mark: Fraction) -> Fraction:
    """MRG-008 from the definition, exact, in smallest settlement units: linear
    ``s * n * cv * (mark - entry)``, inverse ``s * n * cv * (1/entry - 1/mark)``."""
    size, entry, mark = Fraction(size), Fraction(entry), Fraction(mark)
    if _is_linear(inst):
        coins = sign * size * inst.contract_value * (mark - entry)
    else:
        coins = sign * size * inst.contract_value * (1 / entry - 1 / mark)
    return coins * _scale(inst)


def fill_gain_units(inst: Any, side: str, size: Fraction, fill: Fraction, mark: Fraction) -> Fraction:
    """What a fill against the outside book adds to the venue's books valued at ``mark``: the
    engine sells (closes a long) or buys (closes a short) ``size`` at ``fill`` instead of holding
    it at ``mark``: a sell gains ``upnl(long, fill) - upnl(long, mark)`` measured from any entry."""
    s = 1 if side == "sell" else -1
    return upnl_units(inst, s, size, mark, fill)  # the PnL of holding from the mark to the fill


def uncovered_units(inst: Any, sign: int, size: Fraction, price: Fraction, mark: Fraction, available: int) -> int:
    """ADL-002: the deficit of closing an open remainder (``sign``, ``size``, taken over at
    ``price``) at ``mark``, rounded up, beyond ``available``; 0 if the fund covers it."""
    gap = upnl_units(inst, sign, size, price, mark)
    return max(0, math.ceil(-gap) - available)


# ---------------------------------------------------------------- reading the state

def fund_ids(profile: Any) -> dict[str, tuple[str, str]]:
    """instrument id -> (fund id, currency)."""
    return {i.id: (f"{i.business_line.value}/{i.underlying}/{i.settle_currency.code}", i.settle_currency.code)
            for i in profile.instruments.values()}


def _fund_balances(state: Any) -> dict[str, tuple[int, int, str]]:
    """fund id -> (settled, pending, currency), read from the ledger's balances."""
    bal = state.funds.ledger.balances
    out = {}
    for key in state.funds.funds:
        fid = key.id
        out[fid] = (bal.get((f"fund:{fid}", key.currency), 0), bal.get((f"pending:{fid}", key.currency), 0),
                    key.currency)
    return out


def _account_terms(profile: Any, a: Any) -> tuple[dict[str, Fraction], dict[str, Fraction]]:
    """One account's value as a function of the marks: per currency a constant, per instrument a
    coefficient ``k = sum(s * n) * cv * 10**decimals``, such that the account is worth
    ``const + k * mark`` (linear: ``s n cv (mark - e) = s n cv mark - s n cv e``) or
    ``const - k / mark`` (inverse: ``s n cv (1/e - 1/mark) = s n cv / e - s n cv / mark``) -- the
    formulas of :func:`upnl_units` regrouped so that an account that the event did not touch is
    not valued again (accounts are immutable; the cache is keyed by identity)."""
    hit = _ACCT.get(id(a))
    if hit is not None and hit[0] is a:
        return hit[1], hit[2]
    const: dict[str, Fraction] = {}
    coef: dict[str, Fraction] = {}
    for code, amount in a.balances:
        const[code] = const.get(code, 0) + amount
    for q in a.positions:
        inst = profile.instruments[q.instrument]
        code = inst.settle_currency.code
        k = (1 if q.side.value == "long" else -1) * Fraction(q.size) * inst.contract_value * _scale(inst)
        const[code] = const.get(code, 0) + q.margin + (-k * q.entry_price if _is_linear(inst) else k / q.entry_price)
        coef[q.instrument] = coef.get(q.instrument, 0) + k
    if len(_ACCT) > 4096:
        _ACCT.clear()
    _ACCT[id(a)] = (a, const, coef)
    return const, coef


_ACCT: dict[int, Any] = {}


def books_value(state: Any, marks: dict[str, Fraction]) -> dict[str, Fraction]:
    """Everything the venue's books hold, per currency, valued at ``marks`` (see the module doc).
    The last few results are kept (a state is immutable): the state after one event is the state
    before the next, valued at the same marks unless the next event moves one."""
    key = (id(state), tuple(sorted(marks.items())))
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is state:
        return hit[1]
    p = state.profile
    out: dict[str, Any] = {}
    coef: dict[str, Any] = {}

    def add(code: str, v: Any) -> None:
        out[code] = out.get(code, 0) + v

    for a in state.accounts:
        c, k = _account_terms(p, a)
        for code, v in c.items():
            add(code, v)
        for i, v in k.items():
            coef[i] = coef.get(i, 0) + v
    for i, k in coef.items():
        inst = p.instruments[i]
        add(inst.settle_currency.code, k * marks[i] if _is_linear(inst) else -k / marks[i])
    for r in state.remainders:
        inst = p.instruments[r.instrument]
        add(inst.settle_currency.code, upnl_units(inst, r.sign, r.size, r.price, marks[r.instrument]))
    for settled, pending, code in _fund_balances(state).values():
        add(code, settled + pending)
    for code, d in state.dust:
        add(code, d)
    for (acct, code), amount in state.funds.ledger.balances.items():
        if acct == "venue":
            add(code, amount)
    out = {code: Fraction(v) for code, v in out.items()}
    if len(_CACHE) > 4:
        _CACHE.clear()
    _CACHE[key] = (state, out)
    return out


_CACHE: dict[Any, Any] = {}


def _drawdown_over_prefixes(points: tuple[Any, ...], first: int, view: str, now: int, fraction: Fraction,
                            window_ms: int) -> list[bool]:
    """ADL-001 (trigger (b)) from its statement, on every prefix ``points[:n]``, ``first <= n <=
    len(points)``, of a fund's history (HistoryPoint: time_ms, settled, available) read in the
    balance view ``view`` -- the history as it stood at each moment of the event (the points the
    event appended are all at ``now``):  the balance in force at ``now`` is at or below
    ``(1 - f)`` times the positive peak of the window's balances, which are the one in force at
    ``now - W`` and every point in ``(now - W, now]``; never when ``f >= 1``."""
    bal = (lambda h: h.settled) if view == "settled" else (lambda h: h.available)
    if fraction >= 1:
        return [False] * (len(points) - first + 1)
    start = now - window_ms
    old = [h for h in points[:first] if h.time_ms <= now]
    at_start = [bal(h) for h in old if h.time_ms <= start]
    window = ([at_start[-1]] if at_start else []) + [bal(h) for h in old if start < h.time_ms <= now]
    peak = max(window) if window else None
    current = bal(old[-1]) if old else None
    out = []
    for n in range(first, len(points) + 1):
        if n > first:
            h = points[n - 1]
            b = bal(h)
            peak = b if peak is None else max(peak, b)
            current = b
        out.append(current is not None and peak is not None and peak > 0 and current <= (1 - Fraction(fraction)) * peak)
    return out


def _adl_residue(before: Any, records: tuple[Any, ...], marks: dict[str, Fraction]) -> dict[str, Fraction]:
    """Per currency, what the floors of the event's ADLs take off the books (INV-019's residue):
    each counterparty's exact PnL (its part at the mark plus its part at BP, from its entry) less
    the realized PnL credited, and each ADL's exact gap at the mark on the part at the mark less
    ``floor`` of it (ADL-009)."""
    if not any(r.kind == "adl trigger" for r in records):
        return {}
    p = before.profile
    pos = _positions(before)
    signs = {r.id: r.sign for r in before.remainders}
    prices = {r.id: r.price for r in before.remainders}
    out: dict[str, Fraction] = {}
    current = None  # (inst, liquidated sign, bankruptcy price, quantity at the mark)

    def close() -> None:
        if current is not None:
            inst, sl, bp, q = current
            gap = upnl_units(inst, sl, q, bp, marks[inst.id])
            out[inst.settle_currency.code] = out.get(inst.settle_currency.code, Fraction(0)) + gap - math.floor(gap)

    for r in records:
        if r.kind == "bankrupt remainder":
            signs[r.get("remainder_id")] = 1 if r.get("side") == "long" else -1
            prices[r.get("remainder_id")] = r.get("takeover_price")
        elif r.kind == "adl trigger":
            close()
            rid = r.get("remainder_id")
            current = [p.instruments[r.instrument], signs[rid], prices[rid], Fraction(0)]
        elif r.kind == "adl" and current is not None:
            inst = current[0]
            sc = -current[1]
            q = pos[(r.account, r.instrument, "long" if sc > 0 else "short")]
            bp = current[2]
            current[3] += r.get("size_at_mark")
            exact = (upnl_units(inst, sc, r.get("size_at_mark"), q.entry_price, r.get("mark_price"))
                     + upnl_units(inst, sc, r.get("size_at_bankruptcy_price"), q.entry_price, bp))
            code = inst.settle_currency.code
            out[code] = out.get(code, Fraction(0)) + exact - r.get("realized_pnl")
    close()
    return out


def _kind(event: Any) -> str:
    return type(event).__name__


def _positions(state: Any) -> dict[tuple[str, str, str], Any]:
    return {(a.id, q.instrument, q.side.value): q for a in state.accounts for q in a.positions}


# ---------------------------------------------------------------- the check

def check_transition(before: Any, event: Any, after: Any, records: Iterable[Any]) -> list[Violation]:
    """Every check of the module doc on one transition ``before --event--> after``."""
    records = tuple(records)
    p = after.profile
    insts = p.instruments
    fids = fund_ids(p)
    bad: list[Violation] = []
    marks = dict(after.marks)

    # ---- INV-022: conservation to the last unit, per currency
    v0, v1 = books_value(before, marks), books_value(after, marks)
    expected: dict[str, Fraction] = {}
    for r in records:
        if r.kind == "engine fill":
            inst = insts[r.instrument]
            code = inst.settle_currency.code
            expected[code] = expected.get(code, Fraction(0)) + fill_gain_units(
                inst, r.get("side"), r.get("size"), r.get("price"), marks[r.instrument])
    if _kind(event) in ("TopUpEvent", "WithdrawEvent"):
        code = event.fund.split("/")[-1]
        expected[code] = expected.get(code, Fraction(0)) + (event.amount if _kind(event) == "TopUpEvent" else -event.amount)
    residue = _adl_residue(before, records, marks)
    for code in sorted(set(v0) | set(v1) | set(expected)):
        d = v1.get(code, Fraction(0)) - v0.get(code, Fraction(0))
        e = expected.get(code, Fraction(0))
        if d != e:
            r = residue.get(code, Fraction(0))
            bad.append(Violation("INV-022", f"{code}: the venue's books changed by {d} units, the fills against the "
                                            f"book and platform flows explain {e} (difference {d - e}; the ADL "
                                            f"rounding residue of the event is {r})",
                                 "adl-residue" if r != 0 and d - e == -r else None))

    # ---- INV-009: every fund's balances >= 0
    for fid, (settled, pending, _) in _fund_balances(after).items():
        if settled < 0 or settled + pending < 0:
            bad.append(Violation("INV-009", f"fund {fid}: settled {settled}, available {settled + pending}"))

    # ---- positions only shrink; no socialization; the liquidation loss bound
    # only the accounts the event touched (accounts are immutable: an untouched one is the same object)
    accts_after = {a.id: a for a in after.accounts}
    changed = {a.id for a in before.accounts if accts_after.get(a.id) is not a} | (set(accts_after) - {a.id for a in before.accounts})
    pb = {(a.id, q.instrument, q.side.value): q for a in before.accounts if a.id in changed for q in a.positions}
    pa = {(a.id, q.instrument, q.side.value): q for a in after.accounts if a.id in changed for q in a.positions}
    adl_accounts = {r.account for r in records if r.kind == "adl"}
    for k, q in pa.items():
        old = pb.get(k)
        if old is None:
            bad.append(Violation("ADL-003", f"position {k} opened by the event"))
        elif q.size > old.size or q.entry_price != old.entry_price or q.margin_mode != old.margin_mode or q.margin < 0:
            bad.append(Violation("INV-021", f"position {k}: {old.size}@{old.entry_price} m={old.margin} -> "
                                            f"{q.size}@{q.entry_price} m={q.margin}"))
        elif q.size == old.size and q.margin != old.margin:
            bad.append(Violation("INV-021", f"position {k}: margin {old.margin} -> {q.margin} with its size unchanged"))
    for a0 in before.accounts:
        if a0.id not in changed:
            continue
        a1 = accts_after.get(a0.id)
        if a1 is None:
            bad.append(Violation("INV-021", f"account {a0.id} vanished"))
            continue
        bal0, bal1 = dict(a0.balances), dict(a1.balances)
        for code in sorted(set(bal0) | set(bal1) | set(p.currencies)):
            b0, b1 = bal0.get(code, 0), bal1.get(code, 0)
            mine = [q for q in a0.positions if insts[q.instrument].settle_currency.code == code]
            if not mine:
                if b0 != b1:  # no position settled in this currency: nothing may touch the balance
                    bad.append(Violation("ADL-003", f"account {a0.id} holds no {code} position, yet its {code} balance "
                                                    f"went {b0} -> {b1} (socialized)"))
                continue
            if a0.id in adl_accounts:
                continue  # an ADL counterparty realizes PnL (ADL-008); its own check is the conservation above
            shrunk = [q for q in mine if (k := (a0.id, q.instrument, q.side.value)) not in pa or pa[k].size < q.size]
            iso_shrunk = [q for q in shrunk if q.margin_mode.value == "isolated"]
            cross_shrunk = any(q.margin_mode.value == "cross" for q in shrunk)
            money0 = b0 + sum(q.margin for q in mine if q.margin_mode.value == "isolated")
            money1 = b1 + sum(pa[k].margin for q in mine if q.margin_mode.value == "isolated"
                              and (k := (a0.id, q.instrument, q.side.value)) in pa)
            allowed = sum(q.margin for q in iso_shrunk) + (b0 if cross_shrunk else 0)
            if not shrunk and money1 != money0:
                bad.append(Violation("INV-021", f"account {a0.id}: {code} money {money0} -> {money1} without a liquidation"))
            elif money0 - money1 > allowed:
                bad.append(Violation("INV-021", f"account {a0.id} lost {money0 - money1} {code} units in a liquidation, "
                                                f"more than the margin of what was liquidated ({allowed})"))
            if shrunk and not cross_shrunk and b1 != b0:
                bad.append(Violation("INV-021", f"account {a0.id}: an isolated liquidation moved the {code} balance "
                                                f"{b0} -> {b1}"))
            if cross_shrunk and b1 < 0:
                bad.append(Violation("INV-021", f"account {a0.id}: cross balance {code} {b1} < 0 after a liquidation"))

    # ---- INV-026 (C71): no ADL fill realizes a loss; its realized PnL is MRG-008's on the counterparty's entry
    held = {}
    for a0 in before.accounts:
        for q in a0.positions:
            held.setdefault((a0.id, q.instrument), []).append(q)
    for r in records:
        if r.kind != "adl":
            continue
        inst = insts[r.instrument]
        got = r.get("realized_pnl")
        if got < 0:
            bad.append(Violation("INV-026", f"ADL realized a loss of {-got} units for {r.account} {r.instrument}"))
        # the counterparty's side is not in the record: one of its positions there must explain the number
        sides = [q for q in held.get((r.account, r.instrument), []) if q.size >= r.get("reduced_size")]
        want = [math.floor(upnl_units(inst, q.side.sign, r.get("size_at_mark"), q.entry_price, r.get("mark_price"))
                           + upnl_units(inst, q.side.sign, r.get("size_at_bankruptcy_price"), q.entry_price,
                                        r.get("bankruptcy_price"))) for q in sides]
        if got not in want:
            bad.append(Violation("INV-026", f"ADL of {r.account} {r.instrument}: realized {got}, MRG-008 on its "
                                            f"entry gives {want}"))

    # ---- ADL-003: the ADL state, and no market order while in it
    kind = _kind(event)
    checked = {fids[event.instrument][0]} if kind in ("MarkEvent", "BookEvent") else set()
    act0, act1 = dict(before.adl_active), dict(after.adl_active)
    current = dict(act0)
    for r in records:  # the records are the order of work inside the event
        if r.kind == "adl state":
            current[r.fund] = r.get("active")
        elif r.kind == "engine fill" and current.get(fids[r.instrument][0], False):
            bad.append(Violation("ADL-003", f"an engine fill for {r.instrument} ({r.get('side')} {r.get('size')} @ "
                                            f"{r.get('price')}) while fund {fids[r.instrument][0]} is in the ADL state"))
    for fid in sorted(set(current) | set(act1)):
        if current.get(fid, False) != act1.get(fid, False):
            bad.append(Violation("ADL-003", f"fund {fid}: the 'adl state' records end at {current.get(fid, False)}, "
                                            f"the state says {act1.get(fid, False)}"))
    window_ms = p.adl.drawdown_window_seconds * 1000
    for key in after.funds.funds:
        fid, code = key.id, key.currency
        was, now = act0.get(fid, False), act1.get(fid, False)
        if fid not in checked:
            if was != now:
                bad.append(Violation("ADL-003", f"fund {fid}: the ADL state went {was} -> {now} in an event that is "
                                                f"not a check of it ({kind})"))
            continue
        inst = insts[event.instrument]
        settled, pending, _ = _fund_balances(after)[fid]
        available = settled + pending
        tb = _drawdown_over_prefixes(after.funds.history[key], len(before.funds.history[key]),
                                     p.adl.balance_view.value, after.time_ms, p.adl.drawdown_fraction, window_ms)
        tb_all, tb_any = all(tb), any(tb)
        open_rem = [r for r in after.remainders if fids[r.instrument][0] == fid]
        # Trigger (a) is judged at each remainder's own check, with the fund's available balance at that
        # moment (TRN-006; spec/99-sources.md C70), not with the balance the event ends with: a later
        # remainder's retry fills in the same check may spend what an earlier, covered one would need.
        # The balance at a remainder's check is unknown here, but it is at most the highest available
        # balance the fund showed during the event (before it, or in any of its records), and a deficit
        # beyond even that one was beyond the fund at the remainder's check: then (a) must have held.
        b_settled, b_pending, _ = _fund_balances(before)[fid]
        highest = max([b_settled + b_pending, available]
                      + [r.get("available") for r in records if r.fund == fid and r.get("available") is not None])
        ta_end = any(uncovered_units(inst, r.sign, r.size, r.price, marks[r.instrument], highest) > 0
                     for r in open_rem if r.instrument == event.instrument)
        prices = {r.id: r.price for r in before.remainders}
        prices.update({r.get("remainder_id"): r.get("takeover_price") for r in records if r.kind == "bankrupt remainder"})
        fired_a = fired_b = False
        for r in records:
            if r.kind != "adl trigger" or r.fund != fid:
                continue
            sign = {x.id: x.sign for x in before.remainders}.get(r.get("remainder_id"))
            if sign is None:
                sign = next((1 if x.get("side") == "long" else -1) for x in records
                            if x.kind == "bankrupt remainder" and x.get("remainder_id") == r.get("remainder_id"))
            mine = uncovered_units(inst, sign, r.get("remainder"), prices[r.get("remainder_id")], marks[inst.id],
                                   r.get("available"))
            if mine != r.get("uncovered"):
                bad.append(Violation("ADL-002", f"fund {fid}: 'adl trigger' says uncovered {r.get('uncovered')}, "
                                                f"the remainder's deficit at the mark beyond the fund gives {mine}"))
            if mine > 0:
                fired_a = True
            else:
                fired_b = True
                if not tb_any:
                    bad.append(Violation("ADL-003", f"fund {fid}: ADL fired with no trigger (uncovered 0, no drawdown)"))
        keeps = was and sum(r.size for r in open_rem) > 0
        must = fired_a or fired_b or ta_end or tb_all or keeps
        may = must or tb_any
        if must and not now:
            only_a = (fired_a or ta_end) and not (fired_b or tb_all or keeps)
            bad.append(Violation("ADL-003", f"fund {fid}: not in the ADL state after a check at which a trigger held "
                                            f"(fired by (a) {fired_a}, by (b) {fired_b}, open remainder uncovered "
                                            f"{ta_end}, drawdown {tb_all}, was active with a remainder open {keeps})",
                                 "trigger-a-state" if only_a else None))
        if now and not may:
            bad.append(Violation("ADL-003", f"fund {fid}: in the ADL state with no trigger and (was {was}) no open "
                                            f"remainder"))
    return bad
