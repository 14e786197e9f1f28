"""Reusable Hypothesis strategies for backstop: exact numbers only, never a float.

Shipped for other projects' tests (``pip install 'backstop[strategies]'``, then
``from backstop.strategies import scenarios``); backstop's own tests use the same module.

* numbers: :func:`exact_fractions`, :func:`signed_fractions`, :func:`nonzero_fractions`,
  :func:`money_units` (ints of a currency's smallest unit);
* per instrument: :func:`prices` (on or off the tick grid), :func:`sizes` (multiples of the lot
  size, within the tier table), :func:`margins` (ints, including the "margin equals value" edge);
* whole scenarios: :func:`scenarios` draws a shipped profile (optionally one of its rule
  variants), one of its instruments, a position and a mark price, all within the tier table.

Everything is built from the shipped profiles (``PROFILES``), so a new profile or instrument is
exercised without editing the tests.
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

try:
    from hypothesis import assume
    from hypothesis import strategies as st
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("backstop.strategies needs Hypothesis: pip install 'backstop[strategies]'") from e

from backstop.reference.profile import (
    MarginRules, PriceBasis, Profile, TriggerRule, load_profile, profile_names,
)
from backstop.reference.types import ContractKind, Instrument, PositionTerms, Tier, TierBasis, TierTable

__all__ = [
    "PROFILES", "INSTRUMENT_KEYS", "VARIANTS", "examples", "rules_variant",
    "exact_fractions", "signed_fractions", "nonzero_fractions", "money_units", "nonzero_ints",
    "max_size_within", "value_units", "prices", "on_tick_prices", "off_tick_prices", "sizes", "margins",
    "Scenario", "scenarios", "tier_crossing_scenarios", "any_scenarios", "has_crossing", "instrument_keys",
]

PROFILES: dict[str, Profile] = {name: load_profile(name) for name in profile_names()}
INSTRUMENT_KEYS: list[tuple[str, str]] = [
    (pname, iid) for pname, prof in PROFILES.items() for iid in prof.instruments
]

# Rule variants every rule function must also handle: the shipped rules, the seed-001 trigger
# ("margin ratio hits zero") and the other maintenance-margin price basis.
VARIANTS = ("shipped", "zero_equity", "other_basis")

_SCALE = 10 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 1


def examples(n: int) -> int:
    """``n`` examples (ten times as many under ``HYPOTHESIS_PROFILE=thorough``)."""
    return n * _SCALE


def rules_variant(profile: Profile, variant: str) -> MarginRules:
    base = profile.margin
    if variant == "shipped":
        return base
    if variant == "zero_equity":
        return replace(base, trigger=TriggerRule.ZERO_EQUITY)
    if variant == "other_basis":
        other = PriceBasis.ENTRY if base.mm_price_basis is PriceBasis.MARK else PriceBasis.MARK
        return replace(base, mm_price_basis=other)
    raise ValueError(variant)


# ---------------------------------------------------------------- numbers

def exact_fractions(min_value: Any = None, max_value: Any = None,
                    max_denominator: int = 10**6) -> st.SearchStrategy[Fraction]:
    """Exact rationals in ``[min_value, max_value]`` (ints included: denominator 1)."""
    lo = None if min_value is None else Fraction(min_value)
    hi = None if max_value is None else Fraction(max_value)
    return st.one_of(
        st.fractions(min_value=lo, max_value=hi, max_denominator=max_denominator),
        st.integers(min_value=None if lo is None else math.ceil(lo),
                    max_value=None if hi is None else math.floor(hi)).map(Fraction),
    )


def signed_fractions(bound: int = 10**9, max_denominator: int = 10**6) -> st.SearchStrategy[Fraction]:
    """Rationals of either sign (zero included)."""
    return exact_fractions(-bound, bound, max_denominator)


def nonzero_fractions(bound: int = 10**9, max_denominator: int = 10**6) -> st.SearchStrategy[Fraction]:
    return signed_fractions(bound, max_denominator).filter(lambda x: x != 0)


def nonzero_ints(bound: int = 10**12) -> st.SearchStrategy[int]:
    return st.integers(-bound, bound).filter(lambda x: x != 0)


def money_units(min_value: int = 0, max_value: int = 10**18) -> st.SearchStrategy[int]:
    """An amount in the smallest unit of a currency: a plain ``int``."""
    return st.integers(min_value, max_value)


# ---------------------------------------------------------------- per instrument

def value_units(inst: Instrument, size: Fraction, price: Fraction) -> Fraction:
    """The position value in smallest settlement units, from the definition (MRG-001):
    ``size * cv * price`` (linear, quote currency) or ``size * cv / price`` (inverse, base
    currency), times ``10**decimals``.  Written here independently of the reference."""
    coins = size * inst.contract_value * price if inst.kind is ContractKind.LINEAR else size * inst.contract_value / price
    return coins * 10 ** inst.settle_currency.decimals  # type: ignore[no-any-return]  # int ** int is Any in typeshed; decimals >= 0


def max_size_within(inst: Instrument, price: Fraction) -> Fraction | None:
    """The largest size (contracts, not rounded to the lot) whose tier basis at ``price`` is at
    or below the last tier's cap; ``None`` for an unbounded table.  From the definitions:
    size basis: size <= cap; notional basis: value in whole coins <= cap, with value =
    size * cv * price (linear) or size * cv / price (inverse)."""
    table = inst.tier_table
    cap = table.tiers[-1].cap
    if cap is None:
        return None
    if table.basis is TierBasis.SIZE:
        return cap
    if inst.kind is ContractKind.LINEAR:
        return cap / (inst.contract_value * price)
    return cap * price / inst.contract_value


def on_tick_prices(inst: Instrument, lo: Fraction, hi: Fraction) -> st.SearchStrategy[Fraction]:
    """Prices on the instrument's tick grid in ``[lo, hi]``."""
    t = inst.tick_size
    return st.integers(math.ceil(Fraction(lo) / t), math.floor(Fraction(hi) / t)).map(lambda k: k * t)


def off_tick_prices(inst: Instrument, lo: Fraction, hi: Fraction) -> st.SearchStrategy[Fraction]:
    """Prices strictly between two grid points, in ``[lo, hi + tick]``."""
    t = inst.tick_size
    frac = st.fractions(min_value=0, max_value=1, max_denominator=10**4).filter(lambda f: 0 < f < 1)
    return st.tuples(on_tick_prices(inst, lo, hi), frac).map(lambda kf: kf[0] + kf[1] * t)


def prices(inst: Instrument, lo: Any = None, hi: Any = 10**6) -> st.SearchStrategy[Fraction]:
    """Positive prices on or off the tick grid (``lo`` defaults to one tick)."""
    lo = inst.tick_size if lo is None else Fraction(lo)
    return st.one_of(on_tick_prices(inst, lo, Fraction(hi)), off_tick_prices(inst, lo, Fraction(hi)))


def sizes(inst: Instrument, max_size: Fraction | None = None, default_max_lots: int = 10**7) -> st.SearchStrategy[Fraction]:
    """Sizes that are whole multiples of the lot size, from one lot to ``max_size`` (or
    ``default_max_lots`` lots), biased toward small sizes and toward tier caps."""
    lot = inst.lot_size
    n = default_max_lots if max_size is None else math.floor(Fraction(max_size) / lot)
    if n < 1:
        return st.nothing()
    options = [st.integers(1, min(n, 100)), st.integers(1, n)]
    if inst.tier_table.basis is TierBasis.SIZE:
        near: set[int] = set()
        for t in inst.tier_table.tiers:
            if t.cap is not None:
                k = math.floor(t.cap / lot)
                near.update(x for x in (k - 1, k, k + 1) if 1 <= x <= n)
        if near:
            options.append(st.sampled_from(sorted(near)))
    return st.one_of(*options).map(lambda k: k * lot)


def margins(value_units: Fraction) -> st.SearchStrategy[int]:
    """Isolated margins (ints of the settlement currency's smallest unit): tiny, arbitrary, a
    fraction of the position value at entry (leverage from 1/3x up), and exactly the value."""
    v = Fraction(value_units)
    return st.one_of(
        st.integers(0, 10),
        money_units(0, 10**17),
        st.fractions(min_value=0, max_value=3, max_denominator=2000).map(lambda f: math.floor(v * f)),
        st.sampled_from([math.floor(v), math.ceil(v), math.floor(v) - 1, math.ceil(v) + 1]).filter(lambda m: m >= 0),
    )


def instrument_keys() -> st.SearchStrategy[tuple[str, str]]:
    return st.sampled_from(INSTRUMENT_KEYS)


# ---------------------------------------------------------------- scenarios

@dataclass(frozen=True)
class Scenario:
    profile: str
    variant: str
    inst: Instrument
    rules: MarginRules
    pos: PositionTerms
    mark: Fraction

    def __repr__(self) -> str:  # short, exact, and replayable
        p = self.pos
        return (f"Scenario({self.profile}/{self.inst.id}/{self.variant}: sign={p.sign}, size={p.size}, "
                f"entry={p.entry}, margin={p.margin}, mark={self.mark})")


# Static strategies used inside :func:`scenarios` (building strategies inside a composite on every
# draw is slow: Hypothesis validates each new strategy object).
_TICKS = st.integers(1, 10**7)
_GRID_OFFSET = st.one_of(st.just(Fraction(0)),
                         st.fractions(min_value=0, max_value=1, max_denominator=10**4).map(lambda f: f % 1))
_RATIO = st.fractions(min_value=Fraction(1, 20), max_value=20, max_denominator=10**4)
_MODE3 = st.integers(0, 2)
_MODE4 = st.integers(0, 3)
_SIGN = st.sampled_from([1, -1])
_SMALL_INT = st.integers(0, 10)
_BIG_MONEY = money_units(0, 10**17)
_MARGIN_FRACTION = st.fractions(min_value=0, max_value=3, max_denominator=2000)
_KEYS = st.sampled_from(INSTRUMENT_KEYS)
_VARIANT = st.sampled_from(VARIANTS)


@functools.lru_cache(maxsize=None)
def _index(n: int) -> st.SearchStrategy[int]:
    """Integers in ``[0, n)`` (cached: building strategies on every draw is slow)."""
    return st.integers(0, n - 1)


@functools.lru_cache(maxsize=None)
def _keys_strategy(keys: tuple[tuple[str, str], ...]) -> st.SearchStrategy[tuple[str, str]]:
    return st.sampled_from(keys)


def _price(draw: st.DrawFn, inst: Instrument) -> Fraction:
    return (draw(_TICKS) + draw(_GRID_OFFSET)) * inst.tick_size


def _lots(draw: st.DrawFn, inst: Instrument, max_size: Fraction | None) -> Fraction:
    lot = inst.lot_size
    n = 10**7 if max_size is None else math.floor(Fraction(max_size) / lot)
    assume(n >= 1)
    mode = draw(_MODE4)
    if mode == 0:
        k = 1 + draw(_index(min(n, 100)))
    elif mode == 3 and inst.tier_table.basis is TierBasis.SIZE:
        near = sorted({x for t in inst.tier_table.tiers if t.cap is not None
                       for x in (math.floor(t.cap / lot) - 1, math.floor(t.cap / lot), math.floor(t.cap / lot) + 1)
                       if 1 <= x <= n})
        k = near[draw(_index(len(near)))] if near else n
    else:
        k = draw(st.integers(1, n))
    return k * lot


def _margin(draw: st.DrawFn, value: Fraction) -> int:
    mode = draw(_MODE4)
    if mode == 0:
        return draw(_SMALL_INT)
    if mode == 1:
        return draw(_BIG_MONEY)
    if mode == 2:
        return math.floor(value * draw(_MARGIN_FRACTION))
    edge = [math.floor(value), math.ceil(value), math.floor(value) - 1, math.ceil(value) + 1][draw(_MODE4)]
    return max(edge, 0)


@st.composite
def scenarios(draw: st.DrawFn, *, variants: bool = True, keys: list[tuple[str, str]] | None = None,
              within_tiers: bool = True) -> Scenario:
    """A position and a mark price on an instrument of a shipped profile.

    With ``within_tiers`` the size is within the tier table at both the entry and the mark price
    (the precondition of every rule, enforced by ``evaluate.validate_position``)."""
    pname, iid = draw(_KEYS if keys is None else _keys_strategy(tuple(keys)))
    profile = PROFILES[pname]
    inst = profile.instruments[iid]
    variant = draw(_VARIANT) if variants else "shipped"
    rules = rules_variant(profile, variant)
    entry = _price(draw, inst)
    mode = draw(_MODE3)
    mark = _price(draw, inst) if mode == 0 else entry if mode == 1 else entry * draw(_RATIO)
    limits = [max_size_within(inst, entry), max_size_within(inst, mark)] if within_tiers else [None]
    bounded = [x for x in limits if x is not None]
    size = _lots(draw, inst, min(bounded) if bounded else None)
    sign = draw(_SIGN)
    margin = _margin(draw, value_units(inst, size, entry))
    return Scenario(pname, variant, inst, rules, PositionTerms(sign, size, entry, margin), mark)


_CROSSING_KEYS = [
    (pn, iid) for pn, iid in INSTRUMENT_KEYS
    if PROFILES[pn].instruments[iid].tier_table.basis is TierBasis.NOTIONAL
    and len(PROFILES[pn].instruments[iid].tier_table.tiers) > 1
]
_DELTA = st.fractions(min_value=Fraction(1, 10**4), max_value=Fraction(1, 2), max_denominator=10**4)
_MARGIN_SHARE = st.fractions(min_value=Fraction(1, 10**4), max_value=Fraction(3, 5), max_denominator=10**4)


@st.composite
def tier_crossing_scenarios(draw: st.DrawFn, *, variants: bool = True,
                            keys: list[tuple[str, str]] | None = None) -> Scenario:
    """Positions on notional-basis tables whose value at entry lies just on the far side of a
    tier cap, so that the liquidation price usually falls in a different tier than the entry
    (long linear / short inverse: just above a cap; short linear / long inverse: just below).
    ``keys`` restricts the instruments (only notional tables with two tiers or more qualify)."""
    pool = [k for k in _CROSSING_KEYS if keys is None or k in keys]
    assume(pool)
    pname, iid = draw(_keys_strategy(tuple(pool)))
    profile = PROFILES[pname]
    inst = profile.instruments[iid]
    variant = draw(_VARIANT) if variants else "shipped"
    rules = rules_variant(profile, variant)
    tiers = inst.tier_table.tiers
    cap: Fraction = tiers[draw(_index(len(tiers) - 1))].cap  # type: ignore[assignment]  # not the last tier: capped
    sign = draw(_SIGN)
    entry = _price(draw, inst)
    delta = draw(_DELTA)
    value_falls = (sign == 1) == (inst.kind is ContractKind.LINEAR)  # moving to the lp lowers the value
    target = cap * (1 + delta) if value_falls else cap * (1 - delta)  # whole coins
    per_contract = inst.contract_value * entry if inst.kind is ContractKind.LINEAR else inst.contract_value / entry
    lots = math.floor(target / per_contract / inst.lot_size)
    assume(lots >= 1)
    size = lots * inst.lot_size
    mode = draw(_MODE3)
    mark = _price(draw, inst) if mode == 0 else entry if mode == 1 else entry * draw(_RATIO)
    limits = [x for x in (max_size_within(inst, entry), max_size_within(inst, mark)) if x is not None]
    assume(all(size <= x for x in limits))
    margin = math.floor(value_units(inst, size, entry) * draw(_MARGIN_SHARE))
    return Scenario(pname, variant, inst, rules, PositionTerms(sign, size, entry, margin), mark)


def has_crossing(keys: list[tuple[str, str]] | None) -> bool:
    return any(keys is None or k in keys for k in _CROSSING_KEYS)


def any_scenarios(*, variants: bool = True, keys: list[tuple[str, str]] | None = None,
                  within_tiers: bool = True) -> st.SearchStrategy[Scenario]:
    """:func:`scenarios` mixed with :func:`tier_crossing_scenarios` (one draw in four, where
    ``keys`` include a notional table with several tiers)."""
    plain = scenarios(variants=variants, keys=keys, within_tiers=within_tiers)
    if not has_crossing(keys):
        return plain
    return st.one_of(plain, plain, plain, tier_crossing_scenarios(variants=variants, keys=keys))


def inverse_with_deductions(inst: Instrument) -> Instrument:
    """``inst`` (an inverse swap) on a notional table (whole coins) with tier deductions that keep
    the requirement continuous at every cap, as the profile loader demands for tables valued at
    mark.  No shipped profile has an inverse contract with deductions; without this, ``d`` in the
    inverse closed forms of LIQ-002/LIQ-003 would only ever be 0."""
    caps = [Fraction(10), Fraction(50), Fraction(200), None]
    mmrs = [Fraction(4, 1000), Fraction(5, 1000), Fraction(1, 100), Fraction(2, 100)]
    tiers, ded = [], 0
    for i, (cap, mmr) in enumerate(zip(caps, mmrs)):
        if i:
            ded += int(caps[i - 1] * inst.scale * (mmr - mmrs[i - 1]))  # type: ignore[operator]
        tiers.append(Tier(i + 1, cap, mmr, 2 * mmr, 1 / (2 * mmr), ded))
    return replace(inst, tier_table=TierTable("BTC-INVERSE-NOTIONAL", TierBasis.NOTIONAL, tuple(tiers)))
