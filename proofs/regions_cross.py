"""Regions of the cross-margin rule functions (issue 11; C75): operations ``cross`` and ``cross_liquidation``.

An account's list of cross positions gets a FIXED length: ONE leg (the instrument and side the
enumeration runs on) and TWO legs (that leg first, then a *partner* leg of the same settlement
currency: the next other instrument of that currency by id, on each side in turn; where the
profile has no such instrument -- binance, bybit's BTCUSDT, okx's BTC-USD-SWAP -- the same
instrument on the other side, a hedged pair, which eval accepts: one position per instrument and
side).  Longer accounts are valid eval input and are not enumerated: a third leg adds the same
per-leg terms to the same sums (C75).

Each rule function is called on Z3 terms exactly as eval's query calls it (``reference/queries.py``
``query_cross`` / ``query_cross_liquidation``), with the instrument constants of each leg fixed by
the spec instance.  One-leg accounts are split on every condition of the path (as LIQ-001's
isolated regions are: the tier of the leg, each comparison three ways).  A function that composes
other rule functions is split on ITS OWN conditions, each callee's decision a named boolean (C52):
``decide_cross_action`` on LIQ-008's trigger (``is_cross_liquidatable``), each leg's tier against
3 and the cross equity against the tier-1 requirement; two-leg ``is_cross_liquidatable`` on the
cross equity against the summed requirement (the legs' tiers are MRG-004's / LIQ-001's regions,
enumerated on their own); ``compute_cross_liquidation_price`` on whether LIQ-003's price
exists for the leg carrying ``compute_cross_margin_of`` and the tier it is chosen in.

Not enumerated: ``cross_liquidation``'s partial round (``is_cross_partial_funded``,
``compute_cross_partial_balance`` over LIQ-005 steps each carrying its LIQ-009 share): see
``regions.NOT_COVERED_WHY``.
"""

from __future__ import annotations

from typing import Any, Callable

import z3

from backstop.proofs.regions import Built, Inputs, Spec, _fmt, _side, _tier_parts, _within
from backstop.reference import liquidation as L
from backstop.reference import margin as M
from backstop.reference import num
from backstop.reference.profile import PartialRule, PriceBasis, Profile
from backstop.reference.types import Instrument, PositionTerms

__all__ = ["SPECS", "partner"]


def partner(profile: Profile, inst: Instrument) -> Instrument:
    """The second leg's instrument of a two-leg account: the next other instrument (by id) settled in
    the same currency, else ``inst`` itself (a hedged pair: the other side of the same instrument)."""
    same = sorted((i for i in profile.instruments.values()
                   if i.settle_currency.code == inst.settle_currency.code and i.id != inst.id), key=lambda i: i.id)
    return same[0] if same else inst


def _mm_price(profile: Profile, pos: PositionTerms, mark: Any) -> Any:
    return num.ite(profile.margin.mm_price_basis is PriceBasis.MARK, mark, pos.entry)


class Account:
    """The symbolic account of a spec instance: its legs ``ips`` ((instrument, terms) pairs), their
    marks (a hedged pair shares one mark), the balance, and the eval request of a model's values."""

    def __init__(self, profile: Profile, inst: Instrument, sign: int, second: int | None) -> None:
        self.i = Inputs()
        legs = [(inst, sign)]
        if second is not None:
            other = partner(profile, inst)
            legs.append((other, second))
        self.legs = legs
        one = len(legs) == 1
        names = [""] if one else ["1", "2"]
        ips, marks, mark_names = [], [], []
        by_inst: dict[str, tuple[Any, str]] = {}
        self.premises: list[Any] = []
        for (ins, s), n in zip(legs, names):
            size = self.i.size("size" + n, ins.lot_size)
            entry = self.i.price("entry" + n, ins.tick_size)
            if ins.id not in by_inst:
                by_inst[ins.id] = (self.i.price("mark" + n, ins.tick_size), "mark" + n)
            mark, mname = by_inst[ins.id]
            pos = PositionTerms(s, size, entry, 0)
            ips.append((ins, pos))
            marks.append(mark)
            mark_names.append(mname)
            self.premises += _within(ins, pos, mark)
        self.balance = self.i.money("balance", inst.scale)
        self.ips, self.marks = tuple(ips), tuple(marks)
        self.names, self.mark_names = names, mark_names
        self.profile = profile

    def request(self, operation: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        code = self.legs[0][0].settle_currency.code

        def req(v: dict[str, Any]) -> dict[str, Any]:
            return {"operation": operation, "profile": self.profile.name, "balances": {code: v["balance"]},
                    "positions": [{"instrument": ins.id, "side": _side(s), "size": _fmt(v["size" + n]),
                                   "entry_price": _fmt(v["entry" + n])} for (ins, s), n in zip(self.legs, self.names)],
                    "mark_prices": {ins.id: _fmt(v[mn]) for (ins, _), mn in zip(self.legs, self.mark_names)}}
        return req


Pick = Callable[[Profile, Account], tuple[Any, ...]]


def _spec(operation: str, rule: str, function: str, pick: Pick, second: int | None,
          applies: Callable[[Profile, Instrument], bool] = lambda p, i: True) -> Spec:
    """A spec over an account of one leg (``second`` None) or two (the partner leg on side ``second``;
    on a hedged pair only the other side exists: the variant then applies to that side only)."""
    def build(profile: Profile, inst: Instrument, sign: int) -> Built:
        if second is not None and partner(profile, inst) is inst and second == sign:
            # a hedged pair on one side twice is refused by eval (one position per instrument and side):
            # this variant has no account here (its premise is false: no region, complete)
            acc = Account(profile, inst, sign, None)
            return Built(acc.i, {}, [], acc.request(operation), [z3.BoolVal(False)])
        acc = Account(profile, inst, sign, second)
        picked = pick(profile, acc)
        shape = [(f"leg 2 {acc.legs[1][0].id} {_side(acc.legs[1][1])}", True)] if second is not None else []
        return Built(acc.i, picked[0], shape + picked[1], acc.request(operation), acc.premises,
                     picked[2] if len(picked) > 2 else None, picked[3] if len(picked) > 3 else None)
    variant = "" if second is None else f"with-{_side(second)}-partner"
    return Spec(operation, rule, function, build, applies, variant=variant)


def _named(pairs: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The named decisions that are conditions: a decision that is a constant on this instrument (a
    one-tier table's tier) is none."""
    return [(w, a) for w, a in pairs if isinstance(a, z3.ExprRef)]


def _three(label: str, a: Any, b: Any) -> list[tuple[str, Any]]:
    """A comparison of the function's own, split three ways as named decisions (so that the callees'
    conditions inside ``a`` and ``b`` are not split: their regions are their own rules')."""
    return _named([(f"{label}: below", a < b), (f"{label}: equal", a == b)])


def _tier(profile: Profile, acc: Account, n: int) -> Any:
    ins, p = acc.ips[n]
    return M.compute_tier_index(ins, p.size, _mm_price(profile, p, acc.marks[n]))


def _tier_probes(profile: Profile, acc: Account) -> list[tuple[str, Any]]:
    return [(f"leg {n + 1} tier {{}}", _tier(profile, acc, n)) for n in range(len(acc.ips))]


# ---------------------------------------------------------------- cross (LIQ-008, LIQ-010)

def _liq008_trigger(p: Profile, acc: Account) -> Any:
    r = p.margin
    liq = L.is_cross_liquidatable(acc.ips, r, acc.balance, acc.marks)
    e = L.compute_cross_equity(acc.ips, acc.balance, acc.marks)
    req = L.compute_cross_requirement(acc.ips, r, acc.marks)
    outs = {"liquidatable": liq, "equity": e, "requirement": req}
    probes = _tier_probes(p, acc) + [("liquidatable: {}", liq)]
    if len(acc.ips) == 1:
        return outs, probes   # every condition of the path: the leg's tier, the trigger three ways
    return outs, probes, _three("cross equity against the cross requirement", e, req)


def _liq008_action(p: Profile, acc: Account) -> Any:
    r, lr = p.margin, p.liquidation
    action = L.decide_cross_action(acc.ips, r, lr, acc.balance, acc.marks)
    liq = L.is_cross_liquidatable(acc.ips, r, acc.balance, acc.marks)
    atoms: list[Any] = _named([("the trigger holds (is_cross_liquidatable)", liq)])
    if lr.partial is not PartialRule.NONE:  # without partial liquidation the decision is the trigger's alone
        for n in range(len(acc.ips)):
            atoms += _three(f"leg {n + 1} tier against {L.PARTIAL_MIN_TIER}", _tier(p, acc, n), L.PARTIAL_MIN_TIER)
        atoms += _three("cross equity against the tier-1 requirement",
                        L.compute_cross_equity(acc.ips, acc.balance, acc.marks),
                        L.compute_cross_tier_one_requirement(acc.ips, r, acc.marks))
    return ({"action": action, "liquidatable": liq}, [("action {}", action)] + _tier_probes(p, acc), atoms)


def _liq008_ratio(p: Profile, acc: Account) -> Any:
    return {"ratio": L.compute_cross_margin_ratio(acc.ips, acc.balance, acc.marks)}, []


def _liq009_shares(p: Profile, acc: Account) -> Any:
    shares = L.compute_cross_shares(acc.ips, acc.balance, acc.marks)
    return {f"share{n + 1}": x for n, x in enumerate(shares)}, []


def _liq010_margin(p: Profile, acc: Account) -> Any:
    return {"margin": L.compute_cross_margin_of(acc.ips, p.margin, acc.balance, acc.marks, 0)}, \
        ([] if len(acc.ips) == 1 else [("leg 2 tier {}", _tier(p, acc, 1))])


def _liq010_lp(p: Profile, acc: Account) -> Any:
    r = p.margin
    ins, t = acc.ips[0]
    lp = L.compute_cross_liquidation_price(acc.ips, r, acc.balance, acc.marks, 0)
    at = _mm_price(p, t, num.ite(lp.defined, lp.value, t.entry))
    tier = M.compute_tier_index(ins, t.size, at)
    outs = {"defined": lp.defined, "lp": lp.value,
            "lp_tick": num.round_to_step_toward(lp.value, ins.tick_size, t.sign), "tier_at_lp": tier}
    probes = [("cross liquidation price exists: {}", lp.defined), ("leg 1 tier {} at the liquidation price (or entry)", tier)]
    parts = _tier_parts(ins, t.size, at, "of leg 1 at the liquidation price (or entry)")
    # the composition's own conditions: whether LIQ-003's price exists for leg 1 carrying
    # compute_cross_margin_of, and the tier it is chosen in; the tiers inside that margin (leg 2's) are
    # compute_cross_margin_of's regions, LIQ-003's comparisons LIQ-003's (every path of two legs gave
    # 400+ regions on okx; one leg is LIQ-003 on the balance as margin, minutes a side on binance)
    if len(acc.ips) == 2:
        probes.append(("leg 2 tier {}", _tier(p, acc, 1)))
    atoms = _named([("the cross liquidation price exists (compute_liquidation_price)", lp.defined)]
                   + [(f"leg 1 in tier {k} at the liquidation price (or entry)", tier == k)
                      for k in range(1, len(ins.tier_table.tiers) + 1)])
    return outs, probes, atoms, parts


def _liq010_bp(p: Profile, acc: Account) -> Any:
    ins, t = acc.ips[0]
    bp = L.compute_cross_bankruptcy_price(acc.ips, p.margin, acc.balance, acc.marks, 0)
    return ({"defined": bp.defined, "bp": bp.value, "bp_tick": num.round_to_step_toward(bp.value, ins.tick_size, t.sign)},
            [("cross bankruptcy price exists: {}", bp.defined)])


# ---------------------------------------------------------------- cross_liquidation (LIQ-009, the partial round)

def _liq009_full(p: Profile, acc: Account) -> Any:
    deep = L.is_cross_under_water(acc.ips, acc.balance, acc.marks)
    shares = L.compute_cross_full_shares(acc.ips, p.margin, acc.balance, acc.marks)
    return ({"under_water": deep, **{f"share{n + 1}": s for n, s in enumerate(shares)}},
            [("under water: {}", deep)])


def _specs() -> list[Spec]:
    out: list[Spec] = []
    for second in (None, 1, -1):
        out += [_spec("cross", "LIQ-008", "is_cross_liquidatable", _liq008_trigger, second),
                _spec("cross", "LIQ-008", "decide_cross_action", _liq008_action, second),
                _spec("cross", "LIQ-008", "compute_cross_margin_ratio", _liq008_ratio, second),
                _spec("cross", "LIQ-009", "compute_cross_shares", _liq009_shares, second),
                _spec("cross", "LIQ-010", "compute_cross_margin_of", _liq010_margin, second),
                _spec("cross", "LIQ-010", "compute_cross_liquidation_price", _liq010_lp, second),
                _spec("cross", "LIQ-010", "compute_cross_bankruptcy_price", _liq010_bp, second)]
    for second in (1, -1):  # the one-leg LIQ-009 spec is regions.py's own (_cross_spec)
        out.append(_spec("cross_liquidation", "LIQ-009", "compute_cross_full_shares", _liq009_full, second))
    return out


SPECS: list[Spec] = _specs()
