"""The obligation registry.

An :class:`Obligation` is a claim about the reference code, stated in words and as a body that
*calls the reference functions*.  The body receives a :class:`Context`; under the symbolic
interpretation the context hands out Z3 variables and collects premises, under the concrete
interpretation (counterexample replay) it hands out the model's values and checks that the
premises hold.  The same body therefore both states the proof goal and replays a
counterexample through the concrete reference.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Iterable

import z3

from backstop.reference import num
from backstop.reference.errors import BackstopError
from backstop.reference.profile import MarginRules, Profile
from backstop.reference.types import Instrument, PositionTerms

__all__ = ["Scope", "Expect", "Obligation", "Instance", "Context", "Inconclusive", "REGISTRY", "obligation", "instances"]


class Inconclusive(BackstopError):
    """Raised by a body that could not finish building its claim (a path exploration that ran out
    of time or paths): the verdict is ``unknown``, which is never a pass."""


class Scope(enum.Enum):
    ALL = "all values"      # every value of every variable satisfying the premises
    BOUNDED = "bounded"     # variables bounded as the premises say
    MODULAR = "modular"     # one named object against an abstract rest


class Expect(enum.Enum):
    PROVED = "proved"
    COUNTEREXAMPLE = "counterexample"  # a sanity obligation: the solver must find a witness


@dataclass(frozen=True)
class Obligation:
    id: str
    title: str
    rules: tuple[str, ...]
    statement: str
    premises: str
    body: Callable[["Context"], Any]
    scope: Scope = Scope.ALL
    expect: Expect = Expect.PROVED
    limit_seconds: float = 60.0
    per_instrument: bool = True
    applies: Callable[[Profile, Instrument | None], bool] = lambda p, i: True
    applies_note: str = ""
    # a split claim (issue 14): ``parts`` > 1 pieces, each proved on its own (a separate job) under
    # the premises and its part's condition, which the body assumes when ``ctx.part`` is set;
    # ``cover(ctx)`` declares the same variables and returns the parts' conditions, and the prover
    # checks that they are exhaustive under the premises.  The pieces' union is the whole claim.
    parts: int = 1
    cover: Callable[["Context"], list[Any]] | None = None


@dataclass(frozen=True)
class Instance:
    """One obligation instantiated on one profile (and instrument); ``part`` is one piece of a
    split obligation (``None``: the whole claim)."""

    obligation: Obligation
    profile: Profile
    instrument: Instrument | None
    part: int | None = None

    @property
    def key(self) -> str:
        return f"{self.obligation.id}[{self.instrument.id}]" if self.instrument else self.obligation.id


class Context:
    """Hands out variables and collects premises and observations for one run of a body."""

    def __init__(self, profile: Profile, instrument: Instrument | None,
                 values: dict[str, Any] | None = None, part: int | None = None) -> None:
        self.profile = profile
        # None only for an obligation with per_instrument=False, whose body never reads it; typed as
        # Instrument so that the per-instrument bodies need no None check (the checker cannot follow
        # Obligation.per_instrument to the context).
        self.instrument: Instrument = instrument  # type: ignore[assignment]
        self.part = part  # a split obligation's piece (the body assumes its condition), None: whole
        self.values = values  # None: symbolic; a dict: concrete replay
        self.vars: dict[str, tuple[str, Any]] = {}
        self.premises: list[Any] = []
        self.observed: dict[str, Any] = {}
        self.case_groups: list[tuple[str, list[tuple[Any, ...]]]] = []
        self.partitions: dict[str, list[tuple[str, Any, list[Any]]]] = {}

    @property
    def symbolic(self) -> bool:
        return self.values is None

    @property
    def rules(self) -> MarginRules:  # the profile's margin rules
        return self.profile.margin

    # -- variables, each with its domain premise
    def _var(self, name: str, kind: str, make: Callable[[str], Any]) -> Any:
        if name in self.vars:
            raise ValueError(f"variable {name!r} declared twice")
        v = make(name) if self.values is None else self.values[name]
        self.vars[name] = (kind, v)
        return v

    def sign(self, name: str = "sign") -> Any:
        v = self._var(name, "sign", z3.Real)
        self.assume(num.or_(v == 1, v == -1))
        return v

    def size(self, name: str = "size") -> Any:
        v = self._var(name, "size", z3.Real)
        self.assume(v > 0)
        return v

    def price(self, name: str) -> Any:
        v = self._var(name, "price", z3.Real)
        self.assume(v > 0)
        return v

    def money(self, name: str, *, nonnegative: bool = True) -> Any:
        v = self._var(name, "money", _whole_var)
        if nonnegative:
            self.assume(v >= 0)
        return v

    def integer(self, name: str) -> Any:
        return self._var(name, "int", _whole_var)

    def rational(self, name: str) -> Any:
        return self._var(name, "rational", z3.Real)

    def position(self, prefix: str = "") -> PositionTerms:
        """A position on the context's instrument: sign, size > 0, entry > 0, margin >= 0."""
        return PositionTerms(self.sign(prefix + "sign"), self.size(prefix + "size"),
                             self.price(prefix + "entry"), self.money(prefix + "margin"))

    def assume(self, cond: Any) -> None:
        self.premises.append(cond)

    def cases(self, group: str, options: list[tuple[Any, ...]]) -> None:
        """Prove by cases: the prover checks that the options of each group are exhaustive
        under the premises, then the claim under every combination of options, separately.
        An option is ``(label, condition)`` or ``(label, condition, claim)``: an option's own
        claim is proved (with the body's claim) in the cases that choose it."""
        self.case_groups.append((group, options))

    def partitioned_cases(self, group: str, parts: list[tuple[str, Any, list[tuple[Any, ...]]]]) -> None:
        """Cases within parts: ``parts`` is a list of ``(label, part condition, options)``.  The
        prover checks that the parts are exhaustive under the premises and, for each part, that its
        options are exhaustive under the premises and the part; then every option (with its part)
        is one case, with its own claim when it has one."""
        flat = [(f"{pl}, {o[0]}", z3.And(pc, o[1]) if isinstance(o[1], z3.ExprRef) else pc) + tuple(o[2:])
                for pl, pc, opts in parts for o in opts]
        self.case_groups.append((group, flat))
        self.partitions[group] = [(pl, pc, [o[1] for o in opts]) for pl, pc, opts in parts]

    def split_sign(self, pos: PositionTerms) -> None:
        self.cases("side", [("long", pos.sign == 1), ("short", pos.sign == -1)])

    def observe(self, label: str, value: Any) -> Any:
        """Record a quantity the counterexample report should show (returns it unchanged)."""
        self.observed[label] = value
        return value


def _whole_var(name: str) -> Any:
    """A whole-number variable in sort Real: ``to_real`` of an Int constant (integral by
    construction, and mixing freely with the rational constants of the rules)."""
    return z3.ToReal(z3.Int(name))


REGISTRY: dict[str, Obligation] = {}


def obligation(id: str, title: str, *, rules: Iterable[str], statement: str, premises: str,
               scope: Scope = Scope.ALL, expect: Expect = Expect.PROVED, limit_seconds: float = 60.0,
               per_instrument: bool = True,
               applies: Callable[[Profile, Instrument | None], bool] | None = None,
               applies_note: str = "", parts: int = 1,
               cover: Callable[[Context], list[Any]] | None = None) -> Callable[[Callable[[Context], Any]], Callable[[Context], Any]]:
    """Register the decorated body as an obligation."""

    def deco(body: Callable[[Context], Any]) -> Callable[[Context], Any]:
        if id in REGISTRY:
            raise ValueError(f"obligation {id} registered twice")
        if parts > 1:
            body.honours_parts = True  # type: ignore[attr-defined]  # it assumes its part's condition
        REGISTRY[id] = Obligation(id, title, tuple(rules), statement, premises, body, scope, expect,
                                  limit_seconds, per_instrument,
                                  applies or (lambda p, i: True), applies_note, parts, cover)
        return body

    return deco


def instances(profile: Profile, only: Iterable[str] | None = None) -> list[Instance]:
    """Every applicable (obligation, instrument) pair of the profile, in registry order."""
    from backstop.proofs import load_all
    load_all()
    wanted = set(only) if only else None
    out: list[Instance] = []
    for ob in REGISTRY.values():
        targets: list[Instrument | None] = list(profile.instruments.values()) if ob.per_instrument else [None]
        for inst in targets:
            inst_ = Instance(ob, profile, inst)
            if wanted and not ({ob.id, inst_.key} & wanted or set(ob.rules) & wanted):
                continue
            if ob.applies(profile, inst):
                out.append(inst_)
    return out
