"""The prover: one fresh solver per obligation instance, a fixed seed, a time limit, a verdict.

Verdicts:

* ``proved``  -- premises AND NOT claim is unsatisfiable, and the premises alone are satisfiable
  (a vacuous proof, whose premises can never hold, is a failure: ``vacuous``);
* ``counterexample`` -- the solver found values; they are read back exactly (``int``/``Fraction``)
  and replayed through the concrete reference, which must also refute the claim;
* ``unknown`` -- timeout or solver incompleteness.  Never a pass.  The query is written as
  ``.smt2`` for replay when a directory is given.

Only :func:`prove` creates a :class:`Result`; a :class:`Proof` exists only for ``proved``.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import z3

from backstop.reference import num
from backstop.reference.types import format_exact
from backstop.proofs import cache
from backstop.proofs.registry import Context, Expect, Inconclusive, Instance

__all__ = ["SEED", "Result", "prove", "prove_piece", "prove_cover", "merge_parts", "pieces",
           "format_value", "format_counterexample"]

SEED = 20261127  # fixed: verdicts and times must be reproducible


@dataclass(frozen=True)
class Result:
    key: str
    obligation_id: str
    rules: tuple[str, ...]
    instrument: str | None
    verdict: str          # proved | counterexample | unknown | vacuous | error
    expected: str
    seconds: float
    limit_seconds: float
    counterexample: dict[str, Any] = field(default_factory=dict)
    observed: dict[str, Any] = field(default_factory=dict)
    replay: str = ""      # "confirmed" | "not confirmed" | "not replayed: ..."
    detail: str = ""

    @property
    def ok(self) -> bool:
        if self.expected == Expect.COUNTEREXAMPLE.value:
            return self.verdict == "counterexample" and self.replay == "confirmed"
        return self.verdict == "proved"


class _Fresh:
    """A solver in a fresh Z3 context, given translated copies of the formulas.  A verdict then
    depends only on the obligation's own formulas, not on what earlier obligations left in the
    global context (term numbering changes Z3's search: an obligation proved alone in 0.5 s could
    time out after fifty others)."""

    def __init__(self, limit_seconds: float) -> None:
        self.ctx = z3.Context()
        self.solver = z3.Solver(ctx=self.ctx)
        self.solver.set("random_seed", SEED)
        self.solver.set("timeout", max(1, int(limit_seconds * 1000)))

    def add(self, *fs: Any) -> None:
        for f in fs:
            self.solver.add(f.translate(self.ctx))

    def check(self) -> Any:
        return self.solver.check()

    def model(self) -> Any:
        return self.solver.model()

    def reason_unknown(self) -> str:
        reason: str = self.solver.reason_unknown()  # z3 is untyped (Any)
        return reason

    def to_smt2(self) -> str:
        text: str = self.solver.to_smt2()  # z3 is untyped (Any)
        return text

    def term(self, v: Any) -> Any:
        return v.translate(self.ctx) if isinstance(v, z3.ExprRef) else v

    def check_goal(self, goal: str, limit: float) -> Any:
        """``check()`` through the verdict cache (:mod:`backstop.proofs.cache`), keyed by the
        exact query text: a question whose goal is ``unsat`` reads and stores only ``unsat``; a
        question whose goal is ``sat`` (the vacuity check) reads a stored witness only after
        substituting it into the assertions and seeing them all true."""
        if not cache.enabled():
            return self.check()
        key = cache.query_key(self.solver.sexpr(), seed=SEED, limit=limit, kind=goal)
        if goal == "unsat":
            if cache.has_unsat(key):
                return z3.unsat
            r = self.check()
            if r == z3.unsat:
                cache.put_unsat(key)
            return r
        w = cache.get_witness(key)
        if w is not None and cache.witness_holds(list(self.solver.assertions()), w, self.ctx) is not None:
            return z3.sat
        r = self.check()
        if r == z3.sat:
            vals = cache.model_constants(self.model())
            if vals is not None:
                cache.put_witness(key, vals)
        return r


def _solver(limit_seconds: float) -> _Fresh:
    return _Fresh(limit_seconds)


def _read(model: z3.ModelRef, v: Any, kind: str) -> Any:
    try:
        x = num.value_of(v, model)
        if kind in ("money", "int", "sign") and isinstance(x, Fraction) and x.denominator == 1:
            return int(x)  # whole by premise: read back as int
        return x
    except Exception:
        return model.eval(v, model_completion=True).as_decimal(12) + "?"


def pieces(inst: Instance) -> list[Instance]:
    """The separately provable pieces of ``inst``: itself, or one instance per part of a split
    obligation (see :func:`prove_cover` for the check that joins them)."""
    ob = inst.obligation
    n = ob.parts
    # only a body that reads ``ctx.part`` is split (registered with ``parts``): an obligation
    # copied with another body (a planted-bug run's, dataclasses.replace) is proved whole
    if n <= 1 or inst.part is not None or ob.cover is None or not getattr(ob.body, "honours_parts", False):
        return [inst]
    return [dataclasses.replace(inst, part=k) for k in range(n)]


def prove(inst: Instance, smt_dir: Path | None = None) -> Result:
    """The verdict on ``inst``.  A split obligation is proved piece by piece (each part under its
    condition, then the parts' exhaustiveness) and the verdicts are joined by :func:`merge_parts`;
    a process pool proves the same pieces as separate jobs (:mod:`backstop.proofs.pool`)."""
    parts = pieces(inst)
    if len(parts) == 1:
        return prove_piece(inst, smt_dir)
    return merge_parts(inst, prove_cover(inst), [prove_piece(p, smt_dir) for p in parts])


def _result_base(inst: Instance) -> dict[str, Any]:
    """The fields every :class:`Result` of ``inst`` (or of one of its pieces) carries."""
    ob = inst.obligation
    return dict(key=inst.key, obligation_id=ob.id, rules=ob.rules,
                instrument=inst.instrument.id if inst.instrument else None,
                expected=ob.expect.value, limit_seconds=ob.limit_seconds)


def prove_cover(inst: Instance) -> Result:
    """The join of a split obligation: under the premises, the parts' conditions are exhaustive
    (premises AND NOT (cond_1 OR ... OR cond_n) is unsatisfiable).  With every part proved under
    the premises and its condition, the whole claim follows for every value the premises allow."""
    ob = inst.obligation
    base = _result_base(inst)
    t0 = time.perf_counter()
    try:
        ctx = Context(inst.profile, inst.instrument)
        conds = ob.cover(ctx)  # type: ignore[misc]
        if len(conds) != ob.parts:
            return Result(verdict="error", seconds=time.perf_counter() - t0,
                          detail=f"the split names {len(conds)} parts, the obligation {ob.parts}", **base)
        g = _solver(ob.limit_seconds)
        g.add(*[p for p in ctx.premises if isinstance(p, z3.ExprRef)])
        g.add(z3.Not(z3.Or(*[c if isinstance(c, z3.ExprRef) else z3.BoolVal(bool(c)) for c in conds])))
        r = g.check_goal("unsat", ob.limit_seconds)
        secs = time.perf_counter() - t0
        if r == z3.unsat:
            return Result(verdict="proved", seconds=secs, detail=f"{ob.parts} parts exhaustive", **base)
        return Result(verdict="unknown" if r == z3.unknown else "error", seconds=secs,
                      detail=f"the split into {ob.parts} parts not shown exhaustive ({r})", **base)
    except Exception as e:
        return Result(verdict="error", seconds=time.perf_counter() - t0,
                      detail=f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=4)}", **base)


def merge_parts(inst: Instance, cover: Result, parts: list[Result]) -> Result:
    """One verdict for a split obligation: ``proved`` only when the split is exhaustive and every
    part is proved; else the first part (in part order) that is not, or the cover's failure.  The
    time is the sum of the pieces' times (solver time, not wall time)."""
    secs = cover.seconds + sum(r.seconds for r in parts)
    for r in parts:
        if r.verdict != "proved":
            return dataclasses.replace(r, key=inst.key, seconds=secs,
                                       detail=f"part {parts.index(r) + 1} of {len(parts)}: {r.detail}")
    if cover.verdict != "proved":
        return dataclasses.replace(cover, seconds=secs)
    cases = 0
    for r in parts:
        head = r.detail.split(" ", 1)[0]
        cases += int(head) if head.isdigit() else 0
    return dataclasses.replace(parts[0], key=inst.key, seconds=secs,
                               detail=f"{cases} case(s) in {len(parts)} parts, shown exhaustive")


def prove_piece(inst: Instance, smt_dir: Path | None = None) -> Result:
    ob = inst.obligation
    base = _result_base(inst)
    t0 = time.perf_counter()
    try:
        ctx = Context(inst.profile, inst.instrument, part=inst.part)
        claim = ob.body(ctx)
        premises = [p for p in ctx.premises if p is not True]
        if any(p is False for p in premises):
            return Result(verdict="vacuous", seconds=time.perf_counter() - t0,
                          detail="a premise is constantly false", **base)
        premises_z = [p for p in premises if isinstance(p, z3.ExprRef)]
        if not isinstance(claim, z3.ExprRef):
            claim = z3.BoolVal(bool(claim))

        deadline = t0 + ob.limit_seconds

        def left() -> float:
            return max(0.001, deadline - time.perf_counter())

        # Exhaustiveness of every case group.
        for group, options in ctx.case_groups:
            # a partitioned group: the parts, then the options within each part
            checks = ([(group, [], [pc for _, pc, _ in ctx.partitions[group]])]
                      + [(f"{group} in {pl}", [pc], conds) for pl, pc, conds in ctx.partitions[group]]
                      if group in ctx.partitions else [(group, [], [o[1] for o in options])])
            for what, given, conds in checks:
                g = _solver(left())
                g.add(*premises_z, *given)
                g.add(z3.Not(z3.Or(*[c if isinstance(c, z3.ExprRef) else z3.BoolVal(bool(c)) for c in conds])))
                rg = g.check_goal("unsat", ob.limit_seconds)
                if rg != z3.unsat:
                    return Result(verdict="unknown" if rg == z3.unknown else "error",
                                  seconds=time.perf_counter() - t0,
                                  detail=f"case split {what!r} not shown exhaustive ({rg})", **base)
        combos: list[tuple[str, list[Any], list[Any]]] = [("", [], [])]
        for group, options in ctx.case_groups:
            combos = [(f"{lab}, {o[0]}" if lab else o[0], conds + [o[1]], claims + list(o[2:]))
                      for lab, conds, claims in combos for o in options]
        case_label = ""
        r = z3.unsat
        for case_label, conds, claims in combos:
            s = _solver(left())
            s.add(*premises_z)
            s.add(*[c for c in conds if isinstance(c, z3.ExprRef)])
            if any(c is False for c in conds):
                continue
            s.add(z3.Not(z3.And(claim, *[c if isinstance(c, z3.ExprRef) else z3.BoolVal(bool(c)) for c in claims])))
            r = s.check_goal("unsat", ob.limit_seconds)
            if r != z3.unsat:
                break
        if r == z3.unsat:
            v = _solver(left())
            v.add(*premises_z)
            rv = v.check_goal("sat", ob.limit_seconds)
            secs = time.perf_counter() - t0
            if rv == z3.sat:
                return Result(verdict="proved", seconds=secs, detail=f"{len(combos)} case(s)" if ctx.case_groups else "", **base)
            if rv == z3.unsat:
                return Result(verdict="vacuous", seconds=secs, detail="the premises are unsatisfiable", **base)
            return Result(verdict="unknown", seconds=secs, detail=f"vacuity check: {v.reason_unknown()}", **base)
        if r == z3.unknown:
            secs = time.perf_counter() - t0
            if smt_dir is not None:
                smt_dir.mkdir(parents=True, exist_ok=True)
                (smt_dir / f"{inst.key.replace('/', '_')}.smt2").write_text(s.to_smt2())
            return Result(verdict="unknown", seconds=secs,
                          detail=(f"case {case_label}: " if case_label else "") + s.reason_unknown(), **base)

        model = s.model()
        values = {name: _read(model, s.term(v), kind) for name, (kind, v) in ctx.vars.items()}
        secs = time.perf_counter() - t0
        replay, observed = _replay(inst, values)
        return Result(verdict="counterexample", seconds=secs, counterexample=values,
                      observed=observed, replay=replay, detail=f"case {case_label}" if case_label else "", **base)
    except Inconclusive as e:
        return Result(verdict="unknown", seconds=time.perf_counter() - t0, detail=str(e), **base)
    except Exception as e:  # an obligation that cannot even be built is a failure, never a pass
        return Result(verdict="error", seconds=time.perf_counter() - t0,
                      detail=f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=4)}", **base)


def _replay(inst: Instance, values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Run the obligation's body again on the model's values, through the concrete reference."""
    if any(isinstance(v, str) for v in values.values()):
        return "not replayed: the model has irrational values", {}
    try:
        ctx = Context(inst.profile, inst.instrument, values, part=inst.part)
        claim = inst.obligation.body(ctx)
        observed = {k: _concrete(v) for k, v in ctx.observed.items()}
        if not all(p is True for p in ctx.premises):
            return "not confirmed: a premise is false on replay", observed
        return ("confirmed" if claim is False else "not confirmed: the claim holds on replay"), observed
    except Exception as e:
        return f"not replayed: {type(e).__name__}: {e}", {}


def _concrete(v: Any) -> Any:
    if hasattr(v, "defined") and hasattr(v, "value"):  # MaybePrice
        return v.value if v.defined is True else None
    return v


def format_value(v: Any) -> str:
    """Exact decimal string when finite, else ``p/q``; bools and None as words."""
    return format_exact(v)


def format_counterexample(inst: Instance, r: Result) -> str:
    """A scenario a person can read: the position, the prices, what the rules returned."""
    ob = inst.obligation
    lines = [f"{r.key}: {ob.title}", f"  claim: {ob.statement}", f"  premises: {ob.premises}"]
    if inst.instrument is not None:
        i = inst.instrument
        lines.append(f"  instrument: {i.id} ({i.kind.value}, contract value {format_value(i.contract_value)}, "
                     f"settles in {i.settle_currency.code} with {i.settle_currency.decimals} decimals)")
    v = r.counterexample
    if {"sign", "size", "entry", "margin"} <= set(v):
        side = "long" if v["sign"] == 1 else "short"
        m = v["margin"]
        scale = inst.instrument.scale if inst.instrument else 1
        lines.append(f"  position: {side} {format_value(v['size'])} contracts at entry {format_value(v['entry'])}, "
                     f"margin {m} units (= {format_value(Fraction(m, scale)) if isinstance(m, int) else m} "
                     f"{inst.instrument.settle_currency.code if inst.instrument else ''})")
    for k, x in v.items():
        if k not in ("sign", "size", "entry", "margin"):
            lines.append(f"  {k} = {format_value(x)}")
    if r.observed:
        lines.append("  the reference returned:")
        for k, x in r.observed.items():
            lines.append(f"    {k} = {format_value(x)}")
    lines.append(f"  replay through the concrete reference: {r.replay}")
    return "\n".join(lines)
