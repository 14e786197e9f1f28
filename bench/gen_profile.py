"""A generated venue profile with many instruments (issue 14, "Beyond one machine").

The okx profile's rules (margin, liquidation, fund, ADL sections) with ``N`` instruments, each with
its own tier table shaped like the venue's published ones: 3 to 8 tiers, caps growing about
geometrically from a first cap of a few hundred to a few hundred thousand contracts, the
maintenance rate rising from 0.4 % by 0.1-0.5 points a tier, the initial rate twice it (at least
mmr + 0.4 points) and the maximum leverage 1 / imr cut to two decimals.  Nine in ten instruments
are linear (settled in USDT), one in ten inverse (settled in the coin).  Deterministic: the same
``N`` gives the same bytes.

    .venv/bin/python bench/gen_profile.py --instruments 200 --out /tmp/venue200.toml
    .venv/bin/backstop prove --profile /tmp/venue200.toml --only OBL-MRG-001 -j 2
"""

from __future__ import annotations

import argparse
import random
import re
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

from importlib import resources

SEED = 14


def _rules_text() -> str:
    """The okx profile's text up to its first tier table (name, rules, currencies dropped)."""
    text = resources.files("backstop.spec").joinpath("profiles", "okx.toml").read_text(encoding="utf-8")
    text = text.split("\n[tier_tables.", 1)[0]
    text = re.sub(r"(?m)^name = .*$", 'name = "generated"', text, count=1)
    text = re.sub(r"(?m)^title = .*$", 'title = "generated: the okx rules over many instruments (bench/gen_profile.py)"', text, count=1)
    return re.sub(r"(?ms)^\[currencies\.[^\n]*\n[^\[]*", "", text).rstrip() + "\n"


def _tiers(rng: random.Random) -> list[str]:
    n = rng.randint(3, 8)
    cap = Decimal(rng.choice([200, 300, 500, 1000, 2000, 5000]))
    mmr = Decimal("0.004")
    rows = []
    for _ in range(n):
        imr = max(mmr * 2, mmr + Decimal("0.004"))
        lev = (Decimal(1) / imr).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
        rows.append(f'  {{ cap = "{cap}", mmr = "{mmr}", imr = "{imr}", max_leverage = "{lev}" }},')
        cap = cap * rng.choice([2, 3, 4, 5])
        mmr = mmr + Decimal(rng.choice(["0.001", "0.0025", "0.005"]))
    return rows


def generate(n: int) -> str:
    rng = random.Random(SEED)
    coins = [f"C{k:03d}" for k in range(n)]
    out = [_rules_text(), "", "[currencies.USDT]", "decimals = 6"]
    inverse = {c for k, c in enumerate(coins) if k % 10 == 9}
    for c in sorted(inverse):
        out += [f"[currencies.{c}]", "decimals = 8"]
    for c in coins:
        out += ["", f"[tier_tables.{c}]", 'basis = "size"', "tiers = [", *_tiers(rng), "]"]
    for c in coins:
        inv = c in inverse
        cv = rng.choice(["0.001", "0.01", "0.1", "1", "10"]) if not inv else rng.choice(["10", "100"])
        out += ["", f"[instruments.{c}-{'USD' if inv else 'USDT'}-SWAP]", 'business_line = "perpetual_futures"',
                f'underlying = "{c}-{"USD" if inv else "USDT"}"', f'kind = "{"inverse" if inv else "linear"}"',
                f'settle_currency = "{c if inv else "USDT"}"', f'contract_value = "{cv}"',
                f'tick_size = "{rng.choice(["0.1", "0.01", "0.001"])}"', f'lot_size = "{rng.choice(["0.01", "0.1", "1"])}"',
                f'tier_table = "{c}"']
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instruments", type=int, default=200)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    Path(a.out).write_text(generate(a.instruments), encoding="utf-8")
    print(a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
