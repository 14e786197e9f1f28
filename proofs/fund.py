"""Obligations of the insurance-fund slice (INS-*, JRN-*, INV-009..INV-014).

Every body calls the rule functions of :mod:`backstop.reference.fund` and
:mod:`backstop.reference.journal` -- the very ``step_*`` functions the fund plumbing runs -- on
symbolic books: Z3 whole numbers for every balance, time and amount.  None is tied to an
instrument (``per_instrument=False``); each runs once per profile, whose ``[fund]`` parameters
(settlement time, UTC offset) and ``liquidation.fee_receiver`` it reads.

The funds of the models are fixed keys: F and G share a currency (USDT) and differ only by
business line, H holds another currency (BTC).  A symbolic book satisfies the fund invariant
(settled >= 0, settled + pending >= 0, peaks at or above the balances); every other account (the
engine, the venue, the platform, a user) holds any whole amount.
"""

from __future__ import annotations

from typing import Any, Callable

from backstop.reference import fund as F
from backstop.reference import journal as J
from backstop.reference import num
from backstop.reference.events import FundKey
from backstop.reference.profile import BalanceView, FeeReceiver
from backstop.reference.types import BusinessLine
from backstop.proofs.registry import Context, Scope, obligation

KF = FundKey(BusinessLine.PERPETUAL_FUTURES, "BTC-USDT", "USDT")
KG = FundKey(BusinessLine.EXPIRY_FUTURES, "BTC-USDT", "USDT")
KH = FundKey(BusinessLine.PERPETUAL_FUTURES, "BTC-USD", "BTC")
USER = F.user_account("u1")
CURRENCIES = ("USDT", "BTC")
BOUND = 6  # events in the bounded model of OBL-INV-009b
BOUNDED_FUNDS = (KF,)


def _tag(key: FundKey) -> str:
    return {KF: "F", KG: "G", KH: "H"}[key]


def _book(ctx: Context, keys: tuple[FundKey, ...] = (KF, KG, KH), prefix: str = "") -> F.Book:
    """A symbolic book in which every fund satisfies the invariant INV-009 and INV-014."""
    balances: dict[tuple[str, str], Any] = {}
    funds: dict[FundKey, F.FundTerms] = {}
    for k in keys:
        t = prefix + _tag(k)
        s = ctx.money(f"{t}.settled")
        p = ctx.money(f"{t}.pending", nonnegative=False)
        ctx.assume(s + p >= 0)
        clock = ctx.integer(f"{t}.clock")
        ctx.assume(clock >= 0)
        ps, pa = ctx.money(f"{t}.peak_settled"), ctx.money(f"{t}.peak_available")
        ctx.assume(ps >= s)
        ctx.assume(pa >= s + p)
        balances[(F.fund_account(k), k.currency)] = s
        balances[(F.pending_account(k), k.currency)] = p
        balances[(F.engine_account(k), k.currency)] = ctx.money(f"{t}.engine", nonnegative=False)
        funds[k] = F.FundTerms(clock, ps, pa)
    for c in sorted({k.currency for k in keys}):
        for acct in (F.VENUE, F.PLATFORM, USER):
            balances[(acct, c)] = ctx.money(f"{prefix}{acct}.{c}", nonnegative=False)
    return F.Book(balances, funds)


def _bal(book: F.Book, account: str, currency: str) -> Any:
    return J.balance_of(book.balances, account, currency)


def _s(book: F.Book, k: FundKey) -> Any:
    return F.settled_balance(book, k)


def _p(book: F.Book, k: FundKey) -> Any:
    return F.pending_balance(book, k)


def _inv(book: F.Book, k: FundKey) -> Any:
    """INV-009: the fund never goes negative, in either view."""
    return num.and_(_s(book, k) >= 0, _s(book, k) + _p(book, k) >= 0)


def _valid(step: F.Step) -> Any:
    return num.all_([ok for _, ok, _, _ in step.checks])


def _same(a: F.Book, b: F.Book, keys: Any) -> Any:
    return num.all_([J.balance_of(a.balances, *key) == J.balance_of(b.balances, *key) for key in keys])


def _same_terms(a: F.FundTerms, b: F.FundTerms) -> Any:
    return num.and_(a.clock == b.clock, a.peak_settled == b.peak_settled, a.peak_available == b.peak_available)


def _all_keys(*books: F.Book) -> list[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for b in books:
        out |= set(b.balances)
    return sorted(out)


def _steps(ctx: Context, book: F.Book, key: FundKey, prefix: str = "") -> dict[str, F.Step]:
    """One step of every event type on ``key``, each with its own symbolic amount and time."""
    rules = ctx.profile.fund

    def var(name: str, nonneg: bool = True) -> Any:
        return ctx.money(f"{prefix}{name}", nonnegative=nonneg)

    def time(name: str) -> Any:
        return ctx.integer(f"{prefix}{name}.time")

    return {
        "result": F.step_result(rules, book, key, var("result.amount", False), time("result")),
        "fee to fund": F.step_fee(rules, book, key, var("fee.amount", False), time("fee"), FeeReceiver.FUND, USER),
        "fee to venue": F.step_fee(rules, book, key, var("vfee.amount", False), time("vfee"), FeeReceiver.VENUE, USER),
        "top-up": F.step_top_up(rules, book, key, var("topup.amount", False), time("topup")),
        "withdrawal": F.step_withdraw(rules, book, key, var("withdraw.amount", False), time("withdraw")),
        "settlement": _settle_step(rules, book, key, time("settle")),
    }


def _settle_step(rules: Any, book: F.Book, key: FundKey, now: Any) -> F.Step:
    """The settlement of every fund at ``now``, as a step."""
    after, done, checks = F.step_settle_all(rules, book, now)
    (st,) = [s for k, _, s in done if k == key]
    return F.Step(after, tuple(e for _, e, _ in done), checks, st)


# ---------------------------------------------------------------- journal

@obligation("OBL-JRN-001", "an entry balances exactly when booking it leaves every currency's total unchanged",
            rules=["JRN-001", "JRN-002", "INV-010"],
            statement="entry_balances(e) <=> for each currency c: total(apply(b, e), c) = total(b, c); and "
                      "entry_imbalance(e, c) = total(apply(b, e), c) - total(b, c)",
            premises="any balances of three accounts in two currencies; an entry of five legs with any whole "
                     "amounts, two of them on the same account",
            per_instrument=False, limit_seconds=20)
def _jrn_balance(ctx: Context) -> Any:
    accts = [("a", "USDT"), ("b", "USDT"), ("a", "BTC"), ("c", "BTC")]
    balances = {k: ctx.money(f"{k[0]}.{k[1]}", nonnegative=False) for k in accts}
    legs = (("a", "USDT"), ("b", "USDT"), ("a", "USDT"), ("a", "BTC"), ("c", "BTC"))
    entry = J.Entry(0, "test", tuple(J.Leg(a, c, ctx.money(f"leg{i}", nonnegative=False)) for i, (a, c) in enumerate(legs)))
    after = J.apply_entry(balances, entry)
    ok = ctx.observe("entry_balances", J.entry_balances(entry))
    deltas = [J.total(after, c) - J.total(balances, c) for c in CURRENCIES]
    per_account = num.all_([J.balance_of(after, a, c) - J.balance_of(balances, a, c)
                            == num.sum_([num.ite((la, lc) == (a, c), leg.amount, 0) for (la, lc), leg in zip(legs, entry.legs)])
                            for a, c in accts])
    return num.and_(ok == num.all_([d == 0 for d in deltas]),
                    num.all_([J.entry_imbalance(entry, c) == d for c, d in zip(CURRENCIES, deltas)]),
                    per_account)


@obligation("OBL-JRN-002", "an empty entry changes nothing, a non-empty one changes some balance",
            rules=["JRN-002"],
            statement="entry_is_empty(e) <=> apply(b, e) = b (legs on distinct accounts)",
            premises="any balances; an entry of three legs on distinct accounts with any whole amounts",
            per_instrument=False, limit_seconds=20)
def _jrn_empty(ctx: Context) -> Any:
    keys = [("a", "USDT"), ("b", "USDT"), ("c", "BTC")]
    balances = {k: ctx.money(f"{k[0]}.{k[1]}", nonnegative=False) for k in keys}
    entry = J.Entry(0, "test", tuple(J.Leg(a, c, ctx.money(f"leg{i}", nonnegative=False)) for i, (a, c) in enumerate(keys)))
    after = J.apply_entry(balances, entry)
    return J.entry_is_empty(entry) == num.all_([after[k] == balances[k] for k in keys])


@obligation("OBL-JRN-003", "the incremental balances equal a plain recomputation of the journal",
            rules=["JRN-003", "JRN-002"],
            statement="after a top-up, a result and a withdrawal, every balance of the book equals "
                      "recompute(opening entry + every entry booked)",
            premises="a symbolic book of three funds (the opening entry books its balances); any amounts and times",
            per_instrument=False, limit_seconds=20)
def _jrn_recompute(ctx: Context) -> Any:
    rules = ctx.profile.fund
    book = _book(ctx)
    opening = J.Entry(0, "opening", tuple(J.Leg(a, c, v) for (a, c), v in sorted(book.balances.items())))
    s1 = F.step_top_up(rules, book, KF, ctx.money("topup.amount"), ctx.integer("t1"))
    s2 = F.step_result(rules, s1.book, KF, ctx.money("result.amount", nonnegative=False), ctx.integer("t2"))
    s3 = F.step_withdraw(rules, s2.book, KG, ctx.money("withdraw.amount"), ctx.integer("t3"))
    entries = (opening,) + s1.entries + s2.entries + s3.entries
    again = J.recompute(entries)
    return _same(s3.book, F.Book(again, {}), _all_keys(s3.book, F.Book(again, {})))


# ---------------------------------------------------------------- windows

@obligation("OBL-INS-002", "settlement windows are the local days starting at the settlement time; "
            "an instant exactly at 16:00:00.000 HKT opens the new window",
            rules=["INS-002"],
            statement="window_index(t) = local_day(t) when the local time of day of t is at or after the "
                      "settlement time, else local_day(t) - 1; window_start(k) <= t < window_start(k + 1) for "
                      "k = window_index(t); window_index(window_start(k)) = k and window_index(window_start(k) - 1) = k - 1; "
                      "window_start(k + 1) - window_start(k) = 1 day",
            premises="any time t (ms, UTC, any sign) and window index k; local_day(t) = floor((t + offset) / 1 day)",
            per_instrument=False, limit_seconds=20)
def _windows(ctx: Context) -> Any:
    rules = ctx.profile.fund
    t = ctx.integer("t")
    k = ctx.integer("k")
    offset = rules.utc_offset_minutes * 60_000
    local_day = num.div_floor(t + offset, F.DAY_MS)
    time_of_day = t + offset - local_day * F.DAY_MS
    w = ctx.observe("window_index(t)", F.window_index(rules, t))
    start, end = F.window_start(rules, w), F.window_start(rules, w + 1)
    ctx.observe("window start", start)
    at_or_after = time_of_day >= rules.settlement_time_seconds * 1000
    return num.and_(w == num.ite(at_or_after, local_day, local_day - 1),
                    start <= t, t < end,
                    F.window_index(rules, F.window_start(rules, k)) == k,
                    F.window_index(rules, F.window_start(rules, k) - 1) == k - 1,
                    F.window_start(rules, k + 1) - F.window_start(rules, k) == F.DAY_MS)


# ---------------------------------------------------------------- views

@obligation("OBL-INS-003", "the balances a reader sees: settled, and the real-time view settled + pending",
            rules=["INS-003", "INS-001"],
            statement="settled_balance = balance of fund:<id>; pending_balance = balance of pending:<id>; "
                      "view settled reads the settled balance, view settled_plus_pending their sum",
            premises="a symbolic book",
            per_instrument=False, limit_seconds=20)
def _views(ctx: Context) -> Any:
    book = _book(ctx, (KF,))
    s = _bal(book, "fund:" + KF.id, "USDT")
    p = _bal(book, "pending:" + KF.id, "USDT")
    return num.and_(_s(book, KF) == s, _p(book, KF) == p,
                    F.available_balance(s, p) == s + p,
                    F.balance_in_view(BalanceView.SETTLED, s, p) == s,
                    F.balance_in_view(BalanceView.SETTLED_PLUS_PENDING, s, p) == s + p,
                    num.all_([(a, c) == (x, KF.currency) for (a, c), x in
                              zip(F.fund_accounts(KF), ("fund:" + KF.id, "pending:" + KF.id, "engine:" + KF.id))]))


# ---------------------------------------------------------------- results

@obligation("OBL-INS-004", "a result accrues to pending; a deficit is paid up to the available balance and "
            "only the rest is uncovered",
            rules=["INS-004", "INV-013"],
            statement="paid + uncovered = max(-amount, 0), paid >= 0, uncovered >= 0; uncovered > 0 => the "
                      "available balance after is 0; pending changes by amount + uncovered, the engine by "
                      "-(amount + uncovered), the settled balance not at all (after the settlement)",
            premises="a book satisfying the fund invariant; any result amount; a time not before the fund's clock",
            per_instrument=False, limit_seconds=20)
def _results(ctx: Context) -> Any:
    book = _book(ctx, (KF,))
    rules = ctx.profile.fund
    amount = ctx.money("amount", nonnegative=False)
    t = ctx.integer("t")
    step = F.step_result(rules, book, KF, amount, t)
    ctx.assume(_valid(step))
    mid, _, _ = F.settle_fund(rules, book, KF, t)
    after = step.book
    paid, unc = ctx.observe("paid", step.paid), ctx.observe("uncovered", step.uncovered)
    ctx.observe("inflow", step.inflow)
    need = num.ite(amount < 0, -amount, 0)
    engine = F.engine_account(KF)
    return num.and_(paid + unc == need, paid >= 0, unc >= 0, step.inflow == num.ite(amount > 0, amount, 0),
                    num.implies(unc > 0, _s(after, KF) + _p(after, KF) == 0),
                    _p(after, KF) - _p(mid, KF) == amount + unc,
                    _bal(after, engine, "USDT") - _bal(mid, engine, "USDT") == -(amount + unc),
                    _s(after, KF) == _s(mid, KF))


@obligation("OBL-INS-005", "a liquidation fee goes to the fund's pending ledger or to the venue, as the profile says",
            rules=["INS-005"],
            statement="receiver fund: pending += fee, payer -= fee, venue unchanged, inflow = fee; "
                      "receiver venue: venue += fee, payer -= fee, pending unchanged, inflow = 0",
            premises="a book satisfying the fund invariant; a fee >= 0; a time not before the fund's clock",
            per_instrument=False, limit_seconds=20)
def _fees(ctx: Context) -> Any:
    book = _book(ctx, (KF,))
    rules = ctx.profile.fund
    fee, t = ctx.money("fee", nonnegative=False), ctx.integer("t")
    mid, _, _ = F.settle_fund(rules, book, KF, t)
    claims = []
    for receiver in FeeReceiver:
        step = F.step_fee(rules, book, KF, fee, t, receiver, USER)
        a = step.book
        to_fund = receiver is FeeReceiver.FUND
        claims.append(num.implies(_valid(step), num.and_(
            _p(a, KF) - _p(mid, KF) == num.ite(to_fund, fee, 0),
            _bal(a, F.VENUE, "USDT") - _bal(mid, F.VENUE, "USDT") == num.ite(to_fund, 0, fee),
            _bal(a, USER, "USDT") - _bal(mid, USER, "USDT") == -fee,
            step.inflow == num.ite(to_fund, fee, 0))))
        claims.append(_valid(step) == num.and_(fee >= 0, t >= book.funds[KF].clock))
    return num.all_(claims)


@obligation("OBL-INS-006", "a top-up moves the amount from the platform into the settled balance at once",
            rules=["INS-006"],
            statement="settled += amount, platform -= amount, pending unchanged (after the settlement)",
            premises="a book satisfying the fund invariant; an amount >= 0; a time not before the fund's clock",
            per_instrument=False, limit_seconds=20)
def _top_up(ctx: Context) -> Any:
    book = _book(ctx, (KF,))
    rules = ctx.profile.fund
    amount, t = ctx.money("amount", nonnegative=False), ctx.integer("t")
    step = F.step_top_up(rules, book, KF, amount, t)
    mid, _, _ = F.settle_fund(rules, book, KF, t)
    a = step.book
    return num.and_(_valid(step) == num.and_(amount >= 0, t >= book.funds[KF].clock),
                    _s(a, KF) - _s(mid, KF) == amount, _p(a, KF) == _p(mid, KF),
                    _bal(a, F.PLATFORM, "USDT") - _bal(mid, F.PLATFORM, "USDT") == -amount,
                    step.inflow == amount)


@obligation("OBL-INS-007", "a withdrawal is accepted exactly when it leaves both balances at or above zero",
            rules=["INS-007", "INV-009"],
            statement="accepted <=> amount >= 0 and settled - amount >= 0 and settled + pending - amount >= 0 "
                      "(after the settlement); then settled -= amount and platform += amount; "
                      "withdrawable = the largest accepted amount",
            premises="a book satisfying the fund invariant; any amount; a time not before the fund's clock",
            per_instrument=False, limit_seconds=20)
def _withdraw(ctx: Context) -> Any:
    book = _book(ctx, (KF,))
    rules = ctx.profile.fund
    amount, t = ctx.money("amount", nonnegative=False), ctx.integer("t")
    ctx.assume(t >= book.funds[KF].clock)
    step = F.step_withdraw(rules, book, KF, amount, t)
    mid, _, _ = F.settle_fund(rules, book, KF, t)
    a = step.book
    s1, p1 = _s(mid, KF), _p(mid, KF)
    w = ctx.observe("withdrawable", F.withdrawable(s1, p1))
    ok = ctx.observe("accepted", _valid(step))
    return num.and_(ok == num.and_(amount >= 0, s1 - amount >= 0, s1 + p1 - amount >= 0),
                    num.implies(ok, num.and_(_s(a, KF) == s1 - amount,
                                             _bal(a, F.PLATFORM, "USDT") - _bal(mid, F.PLATFORM, "USDT") == amount,
                                             step.paid == amount)),
                    F.withdraw_allowed(w, s1, p1), num.not_(F.withdraw_allowed(w + 1, s1, p1)))


# ---------------------------------------------------------------- settlement

@obligation("OBL-INS-008", "the settlement moves the pending net of a completed window, and nothing twice",
            rules=["INS-008", "INS-002", "INV-012"],
            statement="due <=> window_index(now) > window_index(clock); moved = pending if due else 0; settled += moved, "
                      "pending -= moved, available unchanged; booked at the end of the clock's window; direction(moved) "
                      "is the sign of moved; a second settlement at the same time moves nothing and changes no balance",
            premises="a book satisfying the fund invariant; a settlement time not before the fund's clock",
            per_instrument=False, limit_seconds=20)
def _settle(ctx: Context) -> Any:
    rules = ctx.profile.fund
    book = _book(ctx, (KF,))
    now = ctx.integer("now")
    clock = book.funds[KF].clock
    ctx.assume(now >= clock)
    after, entry, st = F.settle_fund(rules, book, KF, now)
    again, entry2, st2 = F.settle_fund(rules, after, KF, now)
    ctx.observe("moved", st.moved)
    wk = F.window_index(rules, clock)
    due = F.window_index(rules, now) > wk
    d = F.direction(st.moved)
    return num.and_(st.due == due, st.moved == num.ite(due, _p(book, KF), 0),
                    _s(after, KF) == _s(book, KF) + st.moved, _p(after, KF) == _p(book, KF) - st.moved,
                    entry.time_ms == F.window_start(rules, wk + 1), st.window == wk,
                    after.funds[KF].clock == now,
                    d * st.moved >= 0, (d == 0) == (st.moved == 0), num.or_(d == 1, d == -1, d == 0),
                    st2.moved == 0, num.not_(st2.due), _same(again, after, _all_keys(after, again)))


@obligation("OBL-INV-012", "the sum moved at 16:00 equals the pending net of the window's results",
            rules=["INV-012", "INS-008", "INS-004", "INS-005"],
            statement="three results and a fee to the fund inside one window, then the settlement at or after the "
                      "window's end moves exactly sum(amount_i + uncovered_i) + fee into the settled balance; the "
                      "next settlement moves nothing",
            premises="a fund whose window was just settled (pending = 0) with its clock inside window k; events at "
                     "ordered times inside window k; a settlement time in a later window",
            scope=Scope.BOUNDED, per_instrument=False, limit_seconds=30)
def _window_net(ctx: Context) -> Any:
    rules = ctx.profile.fund
    book = _book(ctx, (KF,))
    ctx.assume(_p(book, KF) == 0)
    clock = book.funds[KF].clock
    k = F.window_index(rules, clock)
    end = F.window_start(rules, k + 1)
    times = [ctx.integer(f"t{i}") for i in range(4)]
    prev = clock
    for t in times:
        ctx.assume(t >= prev)
        prev = t
    ctx.assume(times[-1] < end)
    now = ctx.integer("now")
    ctx.assume(now >= end)
    b, net = book, 0
    for i in range(3):
        amount = ctx.money(f"amount{i}", nonnegative=False)
        s = F.step_result(rules, b, KF, amount, times[i])
        ctx.assume(num.not_(s.settlement.due))
        b, net = s.book, net + amount + s.uncovered
    fee = ctx.money("fee")
    s = F.step_fee(rules, b, KF, fee, times[3], FeeReceiver.FUND, USER)
    b, net = s.book, net + fee
    after, _, st = F.settle_fund(rules, b, KF, now)
    _, _, st2 = F.settle_fund(rules, after, KF, now)
    ctx.observe("moved", st.moved)
    ctx.observe("net", net)
    return num.and_(st.due, st.moved == net, _s(after, KF) == _s(book, KF) + net, st2.moved == 0)


# ---------------------------------------------------------------- order, peaks

@obligation("OBL-INS-009", "events are accepted in time order only, and never land in a settled window",
            rules=["INS-009", "INS-002"],
            statement="time_in_order(clock, t) <=> t >= clock; an accepted event at t has window_index(t) >= "
                      "window_index(clock) and sets the clock to t; a refused magnitude is a negative one",
            premises="a book satisfying the fund invariant; any times and amounts",
            per_instrument=False, limit_seconds=20)
def _order(ctx: Context) -> Any:
    rules = ctx.profile.fund
    book = _book(ctx, (KF,))
    clock = book.funds[KF].clock
    steps = _steps(ctx, book, KF)
    claims = []
    for name, step in steps.items():
        (t_field,) = [ok for f, ok, _, _ in step.checks if f == "time_ms"]
        claims.append(t_field == (step.book.funds[KF].clock >= clock))
        claims.append(num.implies(_valid(step), num.and_(
            F.window_index(rules, step.book.funds[KF].clock) >= F.window_index(rules, clock))))
        for f, ok, rule, _ in step.checks:
            if f == "amount" and rule == "INS-009":
                claims.append(ok == (ctx.vars[{"fee to fund": "fee.amount", "fee to venue": "vfee.amount",
                                                "top-up": "topup.amount", "withdrawal": "withdraw.amount"}[name]][1] >= 0))
    t = ctx.integer("t")
    return num.and_(num.all_(claims), F.time_in_order(clock, t) == (t >= clock), F.time_in_order(clock, clock))


@obligation("OBL-INV-014", "the running peak is the highest balance ever booked, in both views",
            rules=["INV-014", "INS-010"],
            statement="after any event: peak' >= peak, peak' >= balance' and >= the balance right after the "
                      "settlement the event ran first, and peak' is one of these three (settled and settled + pending)",
            premises="a book whose peaks are at or above its balances; any accepted event",
            per_instrument=False, limit_seconds=20)
def _peaks(ctx: Context) -> Any:
    book = _book(ctx, (KF,))
    t0 = book.funds[KF]
    claims = []
    for step in _steps(ctx, book, KF).values():
        t1 = step.book.funds[KF]
        mid, _, _ = F.settle_fund(ctx.profile.fund, book, KF, t1.clock)  # the settlement the step ran first
        s, a = _s(step.book, KF), _s(step.book, KF) + _p(step.book, KF)
        ms, ma = _s(mid, KF), _s(mid, KF) + _p(mid, KF)
        claims.append(num.implies(_valid(step), num.and_(
            t1.peak_settled >= t0.peak_settled, t1.peak_settled >= s, t1.peak_settled >= ms,
            num.or_(t1.peak_settled == t0.peak_settled, t1.peak_settled == s, t1.peak_settled == ms),
            t1.peak_available >= t0.peak_available, t1.peak_available >= a, t1.peak_available >= ma,
            num.or_(t1.peak_available == t0.peak_available, t1.peak_available == a, t1.peak_available == ma))))
    return num.all_(claims)


# ---------------------------------------------------------------- invariants

@obligation("OBL-INV-009a", "a fund never goes negative: one event of any type keeps both balances >= 0 (induction step)",
            rules=["INV-009", "INS-004", "INS-005", "INS-006", "INS-007", "INS-008"],
            statement="settled >= 0 and settled + pending >= 0 before => the same after any accepted event "
                      "(result, fee to the fund or the venue, top-up, withdrawal, settlement)",
            premises="a book of three funds satisfying the invariant; any amounts and times",
            per_instrument=False, limit_seconds=20)
def _nonneg_step(ctx: Context) -> Any:
    book = _book(ctx)
    claims: list[Any] = []
    for name, step in _steps(ctx, book, KF).items():
        claims.append(num.implies(_valid(step), num.all_([_inv(step.book, k) for k in (KF, KG, KH)])))
    return num.all_(claims)


@obligation("OBL-INV-010", "conservation: every entry balances and no event changes any currency's total",
            rules=["INV-010", "JRN-001", "INS-004", "INS-005", "INS-006", "INS-007", "INS-008"],
            statement="every entry of every event balances per currency (entry_balances); the total over all "
                      "accounts of each currency is the same after the event",
            premises="a book of three funds in two currencies; any amounts and times (accepted or not)",
            per_instrument=False, limit_seconds=20)
def _conservation(ctx: Context) -> Any:
    book = _book(ctx)
    claims: list[Any] = []
    for step in _steps(ctx, book, KF).values():
        claims.extend(J.entry_balances(e) for e in step.entries)
        claims.extend(J.total(step.book.balances, c) == J.total(book.balances, c) for c in CURRENCIES)
    return num.all_(claims)


@obligation("OBL-INV-011", "isolation: an event on one fund changes no other fund",
            rules=["INV-011", "INS-001"],
            statement="an event on fund F leaves every account and the clock and peaks of G (same currency) and "
                      "H (other currency) unchanged, and its entries touch only F's currency and F's, the venue's, "
                      "the platform's and the payer's accounts",
            premises="a book of three funds; any amounts and times",
            per_instrument=False, limit_seconds=20)
def _isolation(ctx: Context) -> Any:
    book = _book(ctx)
    allowed = set(F.fund_accounts(KF)) | {(F.VENUE, KF.currency), (F.PLATFORM, KF.currency), (USER, KF.currency)}
    claims = []
    steps = _steps(ctx, book, KF)
    settled, entry, _ = F.settle_fund(ctx.profile.fund, book, KF, ctx.integer("settle F.time"))
    steps["settlement"] = F.Step(settled, (entry,), (), None)  # type: ignore[arg-type]  # the settlement of F alone (no Settlement record: the claim reads the book and entries)
    for name, step in steps.items():
        for k in (KG, KH):
            claims.append(_same(book, step.book, F.fund_accounts(k)))
            claims.append(_same_terms(book.funds[k], step.book.funds[k]))
        touched = {(leg.account, leg.currency) for e in step.entries for leg in e.legs}
        claims.append(touched <= allowed)
        claims.append(_same(book, step.book, [x for x in _all_keys(book, step.book) if x not in allowed]))
    return num.all_(claims)


def _merge(cond: Any, a: F.Book, b: F.Book) -> F.Book:
    keys = _all_keys(a, b)
    balances = {k: num.ite(cond, J.balance_of(a.balances, *k), J.balance_of(b.balances, *k)) for k in keys}
    funds = {k: F.FundTerms(num.ite(cond, a.funds[k].clock, b.funds[k].clock),
                            num.ite(cond, a.funds[k].peak_settled, b.funds[k].peak_settled),
                            num.ite(cond, a.funds[k].peak_available, b.funds[k].peak_available))
             for k in a.funds}
    return F.Book(balances, funds)


@obligation("OBL-INV-009b", f"bounded model: from empty funds, any {BOUND} events keep every fund >= 0 and every total at 0",
            rules=["INV-009", "INV-010", "INS-004", "INS-005", "INS-006", "INS-007", "INS-008"],
            statement=f"starting from two empty funds of one currency, after each of {BOUND} events of any type (result, "
                      "fee to the fund, top-up, withdrawal, settlement of every fund), each on either fund, at any "
                      "time and amount, with refused events changing nothing: settled >= 0, settled + pending >= 0 and "
                      "the currency's total over all accounts is 0",
            premises=f"bound: {BOUND} events in sequence through the real step functions; event type, fund, amount and "
                     "time symbolic; the funds start at 0 with a common clock t0 >= 0",
            scope=Scope.BOUNDED, per_instrument=False, limit_seconds=30)
def _bounded(ctx: Context) -> Any:
    rules = ctx.profile.fund
    t0 = ctx.integer("t0")
    ctx.assume(t0 >= 0)
    keys = BOUNDED_FUNDS
    book = F.Book({}, {k: F.FundTerms(t0, 0, 0) for k in keys})
    claims = []
    for i in range(BOUND):
        kind = ctx.integer(f"e{i}.type")
        ctx.assume(num.and_(kind >= 0, kind <= 4))
        on_g = ctx.integer(f"e{i}.fund")
        ctx.assume(num.and_(on_g >= 0, on_g < len(keys)))
        amount, t = ctx.money(f"e{i}.amount", nonnegative=False), ctx.integer(f"e{i}.time")
        nxt = book
        for j, key in enumerate(keys):
            steps = [F.step_result(rules, book, key, amount, t),
                     F.step_fee(rules, book, key, amount, t, FeeReceiver.FUND, USER),
                     F.step_top_up(rules, book, key, amount, t),
                     F.step_withdraw(rules, book, key, amount, t),
                     _settle_step(rules, book, key, t)]
            for n, step in enumerate(steps):
                nxt = _merge(num.and_(kind == n, on_g == j, _valid(step)), step.book, nxt)
        book = nxt
        claims.append(num.all_([_inv(book, k) for k in keys]))  # after every event (a lemma for the next)
        claims.append(J.total(book.balances, "USDT") == 0)
    return num.all_(claims)
