"""Regions of the eval ``adl`` operation's rule functions (issue 11; spec/99-sources.md C79).

An ``adl`` request is a mark price, a list of positions (account, side, size, entry, margin) and,
optionally, a bankrupt remainder (account, side, size, bankruptcy price) with the fund's available
balance.  Without a remainder eval ranks each side (ADL-004 scores, ADL-005 order and indicator);
with one it runs :func:`backstop.reference.adl.execute_adl` (ADL-006..ADL-009).

The lists get FIXED lengths (C79): the score (ADL-004) on 1 position, the ranking (ADL-005) on 2
positions of one side of a linear instrument, and every function of a remainder (the fill rule,
where the remainder executes, the allocation, the mark quantity, the mark part, the settlement, the
fund's result) on a remainder against 1 counterparty.  Not enumerated (``regions.NOT_ENUMERATED``):
the ranking of 3 positions and of 2 positions of an inverse instrument, and the allocation and mark
part against 2 counterparties -- there a feasibility check ties the order to two nonlinear scores
and Z3 does not come back within its resource limit (C79).  ``_Run`` builds the 2-counterparty
chain all the same (``_Run(profile, inst, sign, 2)``), for when a solver does.

``execute_adl`` sorts (``rank_entries``: Python's sort over :func:`is_ranked_before`), which a
symbolic run cannot do.  So the ranking is not read from a sort: each pair's
:func:`is_ranked_before` is called on the two scores (named variables equal to
:func:`compute_adl_score` of the positions, so ADL-004's own branches stay ADL-004's regions) and
keys (symbolic whole numbers, distinct, each position's account id is the letter of its key:
0 -> "A", so the string order eval compares is the number order), and its outcome is one of the
allocation's named decisions.  Every other rule function is called, on the values the eval
pipeline gives it, with each input that another rule function decides (the order, a fill flag,
the part at the bankruptcy price, the total reduced, a slot's prefix) as a named variable tied to
that callee's term by a premise: a region is then a combination of the function's OWN conditions,
and its witness is still an eval request whose answer runs the function on those values.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

import z3

from backstop.proofs.regions import Built, Inputs, Spec, _fmt, _side, _tier_parts
from backstop.reference import adl as A
from backstop.reference import margin as M
from backstop.reference import num
from backstop.reference.profile import AdlRanking, PriceBasis, Profile
from backstop.reference.types import Instrument, PositionTerms

__all__ = ["SPECS", "RANK_LENGTHS", "ALLOCATION_LENGTH"]

RANK_LENGTHS = (2,)           # positions of one side ranked without a remainder
ALLOCATION_LENGTH = 1       # counterparties of a remainder in the allocation / mark-part specs (2 does not finish: C79)
LIQUIDATED = "L"            # the remainder's account: not a letter a counterparty's key gives (0..2 -> A..C)


def _account(key: int) -> str:
    return chr(ord("A") + key)


class _Positions:
    """N positions of one side as eval inputs: size on the lot grid, entry > 0, margin in whole
    units >= 0, and a key 0..N-1 (distinct) naming the account."""

    def __init__(self, i: Inputs, inst: Instrument, sign: int, n: int) -> None:
        self.sign, self.n = sign, n
        self.terms = [PositionTerms(sign, i.size(f"size{k}", inst.lot_size), i.price(f"entry{k}", inst.tick_size),
                                    i.money(f"margin{k}", inst.scale)) for k in range(n)]
        self.keys = [i.integer(f"key{k}") for k in range(n)]
        self.premises: list[Any] = [k <= n - 1 for k in self.keys] + \
            [a != b for a, b in combinations(self.keys, 2)]

    def request(self, v: dict[str, Any]) -> list[dict[str, Any]]:
        return [{"account": _account(v[f"key{k}"]), "side": _side(self.sign), "size": _fmt(v[f"size{k}"]),
                 "entry_price": _fmt(v[f"entry{k}"]), "margin": v[f"margin{k}"]} for k in range(self.n)]


def _permutations(n: int) -> list[tuple[int, ...]]:
    from itertools import permutations
    return list(permutations(range(n)))


def _named_real(name: str, term: Any, premises: list[Any]) -> Any:
    """A named variable equal to ``term``: a callee's value as the caller's input."""
    v = z3.Real(name)
    premises.append(v == term)
    return v


def _named_bool(name: str, term: Any, premises: list[Any]) -> Any:
    v = z3.Bool(name)
    premises.append(v == term)
    return v


def _scores(profile: Profile, inst: Instrument, ps: _Positions, mark: Any, premises: list[Any]) -> list[Any]:
    return [_named_real(f"score{k}", A.compute_adl_score(inst, profile.margin, profile.adl, p, mark), premises)
            for k, p in enumerate(ps.terms)]


def _ranks(scores: list[Any], keys: list[Any]) -> list[Any]:
    """Each position's 0-based rank: how many positions are ranked before it (ADL-005's order,
    read from the pairwise :func:`is_ranked_before`, never from a sort)."""
    n = len(scores)
    return [num.sum_(num.ite(A.is_ranked_before(scores[j], keys[j], scores[k], keys[k]), 1, 0)
                     for j in range(n) if j != k) for k in range(n)]


# ---------------------------------------------------------------- ADL-005 ranking (no remainder)

def _ranking_spec(n: int) -> Spec:
    def build(profile: Profile, inst: Instrument, sign: int) -> Built:
        i = Inputs()
        mark = i.price("mark", inst.tick_size)
        ps = _Positions(i, inst, sign, n)
        premises = list(ps.premises)
        scores = _scores(profile, inst, ps, mark, premises)
        befores = [A.is_ranked_before(scores[a], ps.keys[a], scores[b], ps.keys[b]) for a, b in combinations(range(n), 2)]
        ranks = _ranks(scores, ps.keys)
        buckets = [A.compute_adl_bucket(r, n) for r in ranks]
        outs: dict[str, Any] = {f"rank{k}": r for k, r in enumerate(ranks)}
        outs.update({f"indicator{k}": b for k, b in enumerate(buckets)})
        probes = [(f"{n} positions of one side ranked (the bound, C79)", True)] + \
                 [(f"position {k + 1} rank {{}}", r) for k, r in enumerate(ranks)] + \
                 [(f"position {k + 1} indicator {{}}", b) for k, b in enumerate(buckets)]

        def req(v: dict[str, Any]) -> dict[str, Any]:
            return {"operation": "adl", "profile": profile.name, "instrument": inst.id, "mark_price": _fmt(v["mark"]),
                    "positions": ps.request(v)}
        # the function's own conditions: each pair's score comparison (three ways) and key order;
        # enumerated one account order at a time (C68's parts: the keys are distinct, so the orders
        # partition the domain), which keeps each search to one order's three score comparisons
        parts = [(f"accounts in the order {' '.join(_account(k) for k in perm)}",
                  z3.And(*[ps.keys[k] == v for k, v in zip(perm, range(n))]))
                 for perm in _permutations(n)]
        return Built(i, outs, probes, req, premises, atoms=list(befores), parts=parts)
    return Spec("adl", "ADL-005", "is_ranked_before", build)


# ---------------------------------------------------------------- ADL-004 the score of one position (no remainder)

def _score_spec() -> Spec:
    def build(profile: Profile, inst: Instrument, sign: int) -> Built:
        i = Inputs()
        mark = i.price("mark", inst.tick_size)
        ps = _Positions(i, inst, sign, 1)
        p = ps.terms[0]
        score = A.compute_adl_score(inst, profile.margin, profile.adl, p, mark)
        upl_positive = M.compute_unrealized_pnl(inst, p, mark) > 0
        parts = None
        if profile.adl.ranking is AdlRanking.PNL_TIMES_MARGIN_RATIO:  # Binance's MM ratio: one part per tier (C68)
            price = mark if profile.margin.mm_price_basis is PriceBasis.MARK else p.entry
            parts = _tier_parts(inst, p.size, price, "at the MM price")

        def req(v: dict[str, Any]) -> dict[str, Any]:
            return {"operation": "adl", "profile": profile.name, "instrument": inst.id, "mark_price": _fmt(v["mark"]),
                    "positions": ps.request(v)}
        return Built(i, {"score": score}, [("1 position", True), ("in profit at the mark: {}", upl_positive)], req,
                     list(ps.premises),
                     parts=parts)
    return Spec("adl", "ADL-004", "compute_adl_score", build)


# ---------------------------------------------------------------- a remainder against n counterparties

class _Run:
    """execute_adl's chain on symbolic eval inputs: a remainder of the side ``sign`` (account "L")
    against ``n`` positions of the other side (accounts "A".., all candidates: is_adl_candidate is
    decided by the request's structure, C79).  Each callee's value a later rule function reads is a
    named variable tied to the callee's term by a premise."""

    def __init__(self, profile: Profile, inst: Instrument, sign: int, n: int) -> None:
        rules = profile.adl
        self.i = i = Inputs()
        self.mark = mark = i.price("mark", inst.tick_size)
        self.R = R = i.size("remainder", inst.lot_size)
        self.bp = bp = i.price("bankruptcy_price", inst.tick_size)
        self.avail = avail = i.money("fund_available", inst.scale)
        self.ps = ps = _Positions(i, inst, -sign, n)
        self.premises = pm = list(ps.premises)
        self.sign, self.n, self.profile, self.inst = sign, n, profile, inst
        # ADL-005: the order, from the pairwise comparison (n <= 2: one pair)
        orders: list[tuple[Any, tuple[int, ...]]]
        self.before: Any
        if n == 2:
            scores = _scores(profile, inst, ps, mark, pm)
            self.before = _named_bool("position 1 before position 2",
                                      A.is_ranked_before(scores[0], ps.keys[0], scores[1], ps.keys[1]), pm)
            orders = [(self.before, (0, 1)), (z3.Not(self.before), (1, 0))]
        else:
            self.before = None
            orders = [(z3.BoolVal(True), tuple(range(n)))]
        # ADL-006: where the remainder executes, and each position's fill flag
        self.at_bp = _named_bool("part at the bankruptcy price",
                                 A.is_adl_filled_at_bankruptcy(inst, rules, sign, R, bp, mark, avail), pm)
        self.filled = [_named_bool(f"position {k + 1} filled",
                                   A.is_adl_fillable(inst, -sign, p.entry, mark, bp, self.at_bp), pm)
                       for k, p in enumerate(ps.terms)]
        # ADL-006: the allocation in each order, selected by the order's decision
        per_order = []
        for _, order in orders:
            rs = A.allocate_adl(R, tuple(ps.terms[k].size for k in order), tuple(self.filled[k] for k in order),
                                inst.lot_size)
            per_order.append((order, rs, A.compute_adl_prefixes(rs)))

        def pick(values: list[Any]) -> Any:   # the value of the order that holds
            out = values[-1]
            for (cond, _), v in zip(orders[-2::-1], values[-2::-1]):
                out = num.ite(cond, v, out)
            return out
        # in rank order (slot j = the j-th ranked position) and per position
        self.slot_reduction = [pick([rs[j] for _, rs, _ in per_order]) for j in range(n)]
        self.slot_prefix = [pick([pre[j] for _, _, pre in per_order]) for j in range(n)]
        self.reduction = [pick([rs[order.index(k)] for order, rs, _ in per_order]) for k in range(n)]
        self.total = _named_real("reduced", num.sum_(self.reduction), pm)
        # ADL-007: the part at the mark of the total reduced, each slot's mark part
        self.q = _named_real("mark quantity", A.compute_adl_mark_quantity(inst, rules, sign, self.total, bp, mark, avail), pm)

    def request(self, v: dict[str, Any]) -> dict[str, Any]:
        return {"operation": "adl", "profile": self.profile.name, "instrument": self.inst.id, "mark_price": _fmt(v["mark"]),
                "positions": self.ps.request(v),
                "remainder": {"account": LIQUIDATED, "side": _side(self.sign), "size": _fmt(v["remainder"]),
                              "bankruptcy_price": _fmt(v["bankruptcy_price"])},
                "fund_available": v["fund_available"]}

    def order_atoms(self) -> list[Any]:
        return [] if self.before is None else [("position 1 ranked before position 2, is_ranked_before", self.before)]


def _run_spec(rule: str, function: str, n: int, pick: Any) -> Spec:
    def build(profile: Profile, inst: Instrument, sign: int) -> Built:
        run = _Run(profile, inst, sign, n)
        outs, probes, atoms = pick(run)
        probes = [(f"a remainder against {n} counterpart{'y' if n == 1 else 'ies'} (the bound, C79)", True), *probes]
        parts = None
        if n > 1:  # one account order at a time, as the ranking (C68's parts)
            parts = [(f"accounts in the order {' '.join(_account(k) for k in perm)}",
                      z3.And(*[run.ps.keys[k] == v for k, v in zip(perm, range(n))])) for perm in _permutations(n)]
        return Built(run.i, outs, probes, run.request, run.premises, atoms, parts=parts)
    return Spec("adl", rule, function, build)


def _fillable(run: _Run) -> Any:
    # its own conditions: the PnL of one contract at the mark and at the bankruptcy price, and the
    # callee's decision whether part of the remainder executes at the bankruptcy price
    p = run.ps.terms[0]
    f = A.is_adl_fillable(run.inst, p.sign, p.entry, run.mark, run.bp, run.at_bp)
    return ({"filled": f}, [("part at the bankruptcy price: {}", run.at_bp), ("filled: {}", f)],
            [("part at the bankruptcy price, is_adl_filled_at_bankruptcy", run.at_bp), *_cmp_atoms(f)])


def _cmp_atoms(t: Any) -> list[Any]:
    """The comparisons of a boolean term built of and/or/not (each split three ways by atom_literals)."""
    out: list[Any] = []

    def walk(x: Any) -> None:
        k = x.decl().kind()
        if k in (z3.Z3_OP_AND, z3.Z3_OP_OR, z3.Z3_OP_NOT):
            for c in x.children():
                walk(c)
        elif not (z3.is_const(x) and z3.is_bool(x)):
            out.append(x)
    walk(t)
    return out


def _at_bankruptcy(run: _Run) -> Any:
    # its own conditions: those of the mark quantity of the whole remainder and "less than all of it"
    rules = run.profile.adl
    q = A.compute_adl_mark_quantity(run.inst, rules, run.sign, run.R, run.bp, run.mark, run.avail)
    f = A.is_adl_filled_at_bankruptcy(run.inst, rules, run.sign, run.R, run.bp, run.mark, run.avail)
    return {"at_bp": f, "q": q}, [("part at the bankruptcy price: {}", f)], None


def _allocation(run: _Run) -> Any:
    # its own conditions: the order and the fill flags (callees' decisions) and compute_adl_reduction's
    # comparisons in each slot; the part left unallocated is R minus the total
    left = run.R - num.sum_(run.slot_reduction)
    atoms = [*run.order_atoms(), *[(f"position {k + 1} filled, is_adl_fillable", f) for k, f in enumerate(run.filled)],
             *run.slot_reduction, left > 0]
    probes = [(f"position {k + 1} reduced by {{}}", r) for k, r in enumerate(run.reduction)] + [("{} left", left)]
    return {f"r{k}": r for k, r in enumerate(run.reduction)} | {"left": left}, probes, atoms


def _mark_quantity(run: _Run) -> Any:
    # eval's compute_adl_mark_quantity on the total reduced (a named input: ADL-006's)
    return {"q": run.q}, [("{} at the mark", run.q)], [A.compute_adl_mark_quantity(
        run.inst, run.profile.adl, run.sign, run.total, run.bp, run.mark, run.avail)]


def _mark_part(run: _Run) -> Any:
    # each slot's mark part, on the named mark quantity and the slot's prefix and reduction
    pm = run.premises
    atoms = []
    probes = []
    for j in range(run.n):
        pre = _named_real(f"prefix at rank {j}", run.slot_prefix[j], pm)
        red = _named_real(f"reduction at rank {j}", run.slot_reduction[j], pm)
        part = A.compute_adl_mark_part(run.q, pre, red)
        atoms.append(part)
        probes.append((f"rank {j}: {{}} at the mark", part))
    return {f"part{j}": a for j, a in enumerate(atoms)}, probes, [*run.order_atoms(), *atoms]


def _settle(run: _Run) -> Any:
    p = run.ps.terms[0]
    realized, released, new = A.settle_adl_counterparty(run.inst, p, run.total, run.q, run.mark, run.bp)
    return ({"realized": realized, "released": released, "size": new.size},
            [("realized {}", realized), ("size after {}", new.size)], [realized, released, new.size, new.margin])


def _fund_result(run: _Run) -> Any:
    # the function has no branch of its own (a floor): split by the sign of its result (C79)
    fr = A.compute_adl_fund_result(run.inst, run.sign, run.q, run.bp, run.mark)
    return {"fund": fr}, [("fund result {}", fr)], [fr > 0]


SPECS: list[Spec] = [_score_spec()] + [_ranking_spec(n) for n in RANK_LENGTHS] + [
    _run_spec("ADL-006", "is_adl_fillable", 1, _fillable),
    _run_spec("ADL-006", "is_adl_filled_at_bankruptcy", 1, _at_bankruptcy),
    _run_spec("ADL-006", "allocate_adl", ALLOCATION_LENGTH, _allocation),
    _run_spec("ADL-007", "compute_adl_mark_quantity", 1, _mark_quantity),
    _run_spec("ADL-007", "compute_adl_mark_part", ALLOCATION_LENGTH, _mark_part),
    _run_spec("ADL-008", "settle_adl_counterparty", 1, _settle),
    _run_spec("ADL-009", "compute_adl_fund_result", 1, _fund_result),
]
