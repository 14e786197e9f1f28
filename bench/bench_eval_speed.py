"""Benchmark (issue 14): concrete evaluation of one position's margin quantities, the reference
against a plain exact-Python implementation of the same formulas, side by side in one run.

    python bench/bench_eval_speed.py [--n 6000] [--seed 14] [--repeat 3] [--strict]

The reference is ``backstop.reference.queries.query_margin`` (what ``backstop eval`` answers for
a ``margin`` request, validation included, JSON rendering excluded); the baseline is
``bench/plain_margin.py`` (written from the spec, plain ``Fraction``s and ``if``), given the same
validation (lot grid, tier range).  Positions are seeded and generated over every shipped profile
and four overlays (the bankruptcy fee, the zero-equity trigger, MM valued at the entry, partial
to tier one), linear and inverse, with sizes and marks exactly at tier caps and positions with no
bankruptcy or liquidation price.  Every quantity of every position is checked equal (value and
kind: int, Fraction, bool, none); the table prints positions/s of each, the ratio of their times
(reference / baseline, best of ``--repeat`` interleaved passes) and the 2x target.  Exit 1 when a
quantity differs (or, with ``--strict``, when the target is missed).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from plain_margin import margin_quantities  # noqa: E402

from backstop.reference.errors import BackstopError  # noqa: E402
from backstop.reference.evaluate import validate_position  # noqa: E402
from backstop.reference.margin import compute_margin_for_leverage  # noqa: E402
from backstop.reference.profile import load_profile, load_profile_text  # noqa: E402
from backstop.reference.queries import query_margin  # noqa: E402
from backstop.reference.types import Position, TierBasis  # noqa: E402

TARGET = 2.0
OVERLAYS = {
    "okx+bpfee": 'extends = "okx"\nname = "okx+bpfee"\n[margin]\nbankruptcy_includes_close_fee = true\n',
    "okx+zero": 'extends = "okx"\nname = "okx+zero"\n[margin]\ntrigger = "zero_equity"\n',
    "okx+entry": 'extends = "okx"\nname = "okx+entry"\n[margin]\nmm_price_basis = "entry"\n',
    "bybit+bpfee": 'extends = "bybit"\nname = "bybit+bpfee"\n[margin]\nclose_fee_rate = "0.00075"\n'
                   'bankruptcy_includes_close_fee = true\n',
}


def profiles() -> dict:
    out = {n: load_profile(n) for n in ("okx", "binance", "bybit")}
    for name, text in OVERLAYS.items():
        out[name] = load_profile_text(text, name)
    return out


def _plain_valid(profile, pos: Position, mark: Fraction) -> bool:
    """The baseline's own validation (MRG-001 lot grid, MRG-004 tier range at the entry and mark)."""
    inst = profile.instrument(pos.instrument)
    if (pos.size / inst.lot_size).denominator != 1:
        return False
    last = inst.tier_table.tiers[-1].cap
    if last is None:
        return True
    for p in (pos.entry_price, mark):
        basis = pos.size if inst.tier_table.basis is TierBasis.SIZE else \
            pos.size * inst.contract_value * (p if inst.is_linear else 1 / p)
        if basis > last:
            return False
    return True


def _value(inst, size: Fraction, price: Fraction) -> Fraction:
    k = size * inst.contract_value * inst.scale
    return k * price if inst.is_linear else k / price


def generate(profs: dict, n: int, seed: int) -> tuple[list, dict]:
    """``n`` valid (profile, position, mark, leverage) cases and counts of the edges they cover."""
    rng = random.Random(seed)
    names = sorted(profs)
    cases, edges = [], {"at a tier cap": 0, "no bankruptcy price": 0, "no liquidation price": 0,
                        "from a leverage": 0, "inverse": 0, "linear": 0}
    while len(cases) < n:
        pname = names[len(cases) % len(names)]
        prof = profs[pname]
        inst = rng.choice(list(prof.instruments.values()))
        base = Fraction({"ETH": 2000}.get(inst.underlying.split("-")[0], 30000))
        mark = inst.tick_size * int(base * Fraction(rng.randint(50, 150), 100) / inst.tick_size)
        caps = [t.cap for t in inst.tier_table.tiers if t.cap is not None]
        lot = inst.lot_size
        edge = rng.random() < 0.3 and bool(caps)
        if edge and inst.tier_table.basis is TierBasis.SIZE:
            size = rng.choice(caps)
        elif edge:  # the notional at the mark is exactly a cap: mark = cap / (size cv) (linear), size cv / cap
            size = lot * rng.randint(1, 5000)
            cap = rng.choice(caps)
            mark = cap / (size * inst.contract_value) if inst.is_linear else size * inst.contract_value / cap
        else:
            size = lot * rng.randint(1, 400_000 if inst.tier_table.basis is TierBasis.SIZE else 40_000)
        entry = max(inst.tick_size, inst.tick_size * int(mark * Fraction(rng.randint(85, 118), 100) / inst.tick_size))
        side = rng.choice(["long", "short"])
        v = _value(inst, size, entry)
        r = rng.random()
        leverage = None
        if r < 0.1:
            leverage = Fraction(rng.randint(1, 125))
            margin = compute_margin_for_leverage(inst, size, entry, leverage)
        elif r < 0.22:
            margin = int(v) + rng.randint(0, 3)                     # about k*e / k/e: no bankruptcy price for a long / short
        elif r < 0.3:
            margin = int(v * Fraction(rng.randint(101, 400), 100))  # above the value
        elif r < 0.32:
            margin = 0
        else:
            margin = int(v * Fraction(rng.randint(1, 80), 1000))
        pos = Position(inst.id, side, size, entry, "isolated", margin)
        try:
            validate_position(prof, pos, mark)
        except BackstopError:
            assert not _plain_valid(prof, pos, mark), (pname, pos, mark)
            continue
        assert _plain_valid(prof, pos, mark), (pname, pos, mark)
        cases.append((pname, prof, pos, mark, leverage))
        edges["at a tier cap"] += edge
        edges["from a leverage"] += leverage is not None
        edges["inverse" if not inst.is_linear else "linear"] += 1
    return cases, edges


def _same(a, b) -> bool:
    if a is None or b is None or isinstance(a, bool) or isinstance(b, bool):
        return a is b or (type(a) is type(b) and a == b)
    return a == b


# A difference the baseline (written from the spec) found in the reference; reported, not hidden:
# LIQ-005's _cap_of stands 0 for the last tier, so the eval's tier_max_size is 0 for a position in
# the last tier of a BOUNDED table (okx tier 7: cap 60,000 contracts), where MRG-009 says "the largest
# size in the tier at a price is LIQ-005's max_size_in_tier" of the tier's cap.  Kept byte-identical
# (issue 14 changes no answer); counted in the table.
def _known(name: str, ref, plain, prof, pos) -> bool:
    inst = prof.instrument(pos.instrument)
    return (name == "tier_max_size" and ref == 0 and inst.tier_table.tiers[-1].cap is not None
            and plain is not None and plain > 0)


def check(cases) -> tuple[int, int, list[str], dict]:
    checked, known, diffs = 0, 0, []
    for pname, prof, pos, mark, lev in cases:
        ref = {k: q.value for k, q in query_margin(prof, pos, mark, lev).items()}
        plain = margin_quantities(prof, pos, mark, lev)
        if set(ref) != set(plain):
            diffs.append(f"{pname} {pos}: names differ: {sorted(set(ref) ^ set(plain))}")
            continue
        for name in ref:
            checked += 1
            if not _same(ref[name], plain[name]):
                if _known(name, ref[name], plain[name], prof, pos):
                    known += 1
                    continue
                diffs.append(f"{pname} {pos} mark {mark}: {name}: reference {ref[name]!r}, baseline {plain[name]!r}")
    return checked, known, diffs


def time_both(cases, repeat: int) -> tuple[float, float]:
    best_ref = best_plain = float("inf")
    for _ in range(repeat):  # interleaved, best of each: both see the same machine load
        t0 = time.perf_counter()
        for _pname, prof, pos, mark, lev in cases:
            validate_position(prof, pos, mark)  # query_margin validates again inside: as eval does
            query_margin(prof, pos, mark, lev)
        t1 = time.perf_counter()
        for _pname, prof, pos, mark, lev in cases:
            _plain_valid(prof, pos, mark)
            margin_quantities(prof, pos, mark, lev)
        t2 = time.perf_counter()
        best_ref, best_plain = min(best_ref, t1 - t0), min(best_plain, t2 - t1)
    return best_ref, best_plain


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=14)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--strict", action="store_true", help="exit 1 when the 2x target is missed too")
    a = ap.parse_args(argv)
    profs = profiles()
    cases, edges = generate(profs, a.n, a.seed)
    checked, known, diffs = check(cases)
    no_bp = sum(margin_quantities(p, pos, m, l)["bankruptcy_price"] is None for _, p, pos, m, l in cases)
    no_lp = sum(margin_quantities(p, pos, m, l)["liquidation_price"] is None for _, p, pos, m, l in cases)
    edges["no bankruptcy price"], edges["no liquidation price"] = no_bp, no_lp

    print(f"\n### Concrete margin evaluation: reference vs plain exact Python ({len(cases)} positions, seed {a.seed})\n")
    print("| profile | positions | reference pos/s | baseline pos/s | ratio (time ref / base) | target | result |")
    print("|---|---:|---:|---:|---:|---:|---|")
    worst = 0.0
    groups = {}
    for c in cases:
        groups.setdefault(c[0], []).append(c)
    rows = [(name, groups[name]) for name in sorted(groups)] + [("all", cases)]
    for name, cs in rows:
        tr, tp = time_both(cs, a.repeat)
        ratio = tr / tp
        if name == "all":
            worst = ratio
        print(f"| {name} | {len(cs)} | {len(cs) / tr:,.0f} | {len(cs) / tp:,.0f} | {ratio:.2f}x | {TARGET:.0f}x | "
              f"{'pass' if ratio <= TARGET else 'FAIL'} |")
    print(f"\nEquality: {len(cases)} positions, {checked} quantities compared, {len(diffs)} differ, "
          f"{known} known difference(s) (tier_max_size in a bounded table's last tier: reference 0, spec its cap).")
    print("Cases: " + ", ".join(f"{k} {v}" for k, v in edges.items()) + ".")
    for d in diffs[:20]:
        print("DIFF " + d)
    if diffs:
        return 1
    if a.strict and worst > TARGET:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
