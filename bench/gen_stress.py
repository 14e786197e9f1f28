"""A seeded stress scenario for ``backstop simulate`` (issue 14, "simulation at scale").

Writes a scenario TOML (the format of ``examples/README.md``) on the okx profile: ``--accounts``
accounts with isolated and cross positions on both sides of BTC-USDT-SWAP and ETH-USDT-SWAP
(linear, USDT) and BTC-USD-SWAP (inverse, BTC), some of them "whales" above tier 3 at the
highest leverage healthy at the opening mark (so a small move takes them into the partial band,
LIQ-005), and a timeline of ``--marks`` mark events (a random walk by 0.01 % .. 0.3 %, on the
three instruments in turn), with a book refresh every ``--book-every`` marks, a daily settlement
each day, and one crash: at 40 % of the timeline each BTC instrument falls ten marks in a row by
``--crash`` tenths of a percent each (default 1.5 %: about 14 %)
through thin books whose bids lie below the longs' bankruptcy prices, so the small funds are
drained, full and partial liquidations happen, and ADL trigger (a) fires; then the market recovers
and the platform tops the funds up.

Every account starts healthy at the opening marks (checked here with the reference's own
``liquidation.decide_action`` / ``decide_cross_action``, as ``bench/bench_soak.py`` does), so
the first liquidations come from the moves.  The same seed and sizes always give the same bytes.

    python bench/gen_stress.py --accounts 1000 --marks 10000 --seed 14 --out build/stress.toml
"""

from __future__ import annotations

import argparse
import random
import sys
from fractions import Fraction as Q
from pathlib import Path

from backstop.reference import liquidation as L
from backstop.reference.profile import load_profile
from backstop.reference.types import Position, format_exact

P = load_profile("okx")
INSTS = ("BTC-USDT-SWAP", "ETH-USDT-SWAP", "BTC-USD-SWAP")
BASE = {"BTC-USDT-SWAP": Q(30_000), "ETH-USDT-SWAP": Q(2_000), "BTC-USD-SWAP": Q(30_000)}
FUND = {i: f"perpetual_futures/{P.instruments[i].underlying}/{P.instruments[i].settle_currency.code}" for i in INSTS}
DEC = {"USDT": 6, "BTC": 8}
# sizes kept below each table's last cap at every mark the walk can reach (tier 3 starts above
# 3,000 BTC contracts and 30,000 ETH contracts)
MAX_SIZE = {"BTC-USDT-SWAP": 20_000, "ETH-USDT-SWAP": 200_000, "BTC-USD-SWAP": 20_000}
START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
TOP_UP = {"USDT": 100_000 * 10**6, "BTC": 3 * 10**8}  # the platform refills each fund after the crash


# the world's rounding and value helpers are the soak's (one copy, bench/bench_soak.py)
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_soak import _lot, _tick, _value_coins  # noqa: E402


def _code(inst: str) -> str:
    return P.instruments[inst].settle_currency.code


def _coins(units: int, code: str) -> str:
    return format_exact(Q(units, 10 ** DEC[code]))


def _healthy(q: Position) -> bool:
    return L.decide_action(P.instruments[q.instrument], P.margin, P.liquidation, q.terms(), BASE[q.instrument]) == L.NONE


class Gen:
    def __init__(self, seed: int, accounts: int, marks: int, book_every: int, crash: int) -> None:
        self.rng = random.Random(seed)
        self.n_accounts, self.n_marks, self.book_every, self.crash = accounts, marks, book_every, crash

    # ---------------------------------------------------------------- accounts

    def _isolated(self, inst: str, side: str, whale: bool) -> Position | None:
        r = self.rng
        hi = MAX_SIZE[inst] if whale else MAX_SIZE[inst] // 40
        size = _lot(inst, Q(r.randint(hi // 4 if whale else 1, hi)))
        scale = 10 ** DEC[_code(inst)]
        entry = _tick(inst, BASE[inst] * (1 + Q(r.randint(-200, 200), 10_000)))
        levs = (90, 60, 45, 30, 20, 10) if whale else (r.choice((100, 75, 50, 30, 20, 10, 5, 3)),)
        for lev in levs:
            q = Position(inst, side, size, entry, "isolated", int(_value_coins(inst, size, entry) * scale / lev))
            if _healthy(q):
                return q
        return None

    def account(self, k: int) -> dict:
        r = self.rng
        whale = k % 19 == 5  # about 5 % whales
        positions, seen = [], set()
        for _ in range(1 if whale else r.choice((1, 1, 2, 2, 3))):
            inst, side = r.choice(INSTS), r.choice(("long", "short"))
            if (inst, side) in seen:
                continue
            seen.add((inst, side))
            if whale or r.random() < 0.6:
                q = self._isolated(inst, side, whale)
                if q is not None:
                    positions.append(q)
            else:
                size = _lot(inst, Q(r.randint(1, MAX_SIZE[inst] // 40)))
                entry = _tick(inst, BASE[inst] * (1 + Q(r.randint(-200, 200), 10_000)))
                positions.append(Position(inst, side, size, entry, "cross", 0))
        balances = {}
        for code in ("USDT", "BTC"):
            group = [q for q in positions if q.margin_mode.value == "cross" and _code(q.instrument) == code]
            value = sum((_value_coins(q.instrument, q.size, q.entry_price) for q in group), Q(0))
            lev = r.choice((5, 10, 20, 40, 60))
            units = int(value * 10 ** DEC[code] / lev) + r.choice((0, 0, 1, 100)) * 10 ** DEC[code] // 100
            if group:
                ips = tuple((P.instruments[q.instrument], q.terms()) for q in group)
                mks = tuple(BASE[q.instrument] for q in group)
                while L.decide_cross_action(ips, P.margin, P.liquidation, units, mks) != L.NONE:
                    units = units * 2 + 10 ** DEC[code]
            if units:
                balances[code] = units
        return {"id": f"a{k:05d}", "balances": balances, "positions": positions}

    # ---------------------------------------------------------------- books and marks

    def book(self, inst: str, mark: Q, thin_below: Q | None = None) -> tuple[list, list]:
        """Four levels a side around ``mark``; ``thin_below``: a crash book, two small bids below it."""
        r = self.rng
        depth = MAX_SIZE[inst] // 10
        if thin_below is not None:
            bids = [(_tick(inst, thin_below * Q(99 - k, 100)), _lot(inst, Q(depth, 50))) for k in range(2)]
        else:
            step = _tick(inst, mark * Q(r.randint(1, 10), 10_000))
            bids = [(mark - step * (k + 1), _lot(inst, Q(r.randint(depth // 4, depth)))) for k in range(4)]
        step = _tick(inst, mark * Q(r.randint(1, 10), 10_000))
        asks = [(mark + step * (k + 1), _lot(inst, Q(r.randint(depth // 4, depth)))) for k in range(4)]
        bids = [b for b in bids if b[0] > 0 and b[0] < asks[0][0]]
        return bids, asks

    def scenario(self) -> str:
        r = self.rng
        accounts = [self.account(k) for k in range(self.n_accounts)]
        marks = dict(BASE)
        out: list[str] = [
            f"# Generated by bench/gen_stress.py --accounts {self.n_accounts} --marks {self.n_marks} "
            f"--book-every {self.book_every} --crash {self.crash} (seeded; do not edit).",
            'name = "stress"',
            f'description = "{self.n_accounts} accounts, {self.n_marks} marks, a BTC crash at 40% (ten marks of -{format_exact(Q(self.crash, 10))}%)"',
            'profile = "okx"',
            f"start = {START_MS}",
            "",
            "[funds]",
        ]
        for inst in INSTS:
            code = _code(inst)
            out.append(f'"{FUND[inst]}" = "{_coins(r.choice((1, 10, 100)) * 10 ** DEC[code] // 10, code)}"')
        out += ["", "[marks]"] + [f'{i} = "{format_exact(m)}"' for i, m in marks.items()]
        for inst in INSTS:
            bids, asks = self.book(inst, marks[inst])
            out += ["", f"[books.{inst}]", f"bids = {_levels(bids)}", f"asks = {_levels(asks)}"]
        for a in accounts:
            out += ["", "[[accounts]]", f'id = "{a["id"]}"']
            if a["balances"]:
                out.append("balances = { " + ", ".join(f'{c} = "{_coins(u, c)}"' for c, u in a["balances"].items()) + " }")
            for q in a["positions"]:
                out += ["[[accounts.positions]]", f'instrument = "{q.instrument}"', f'side = "{q.side.value}"',
                        f'size = "{format_exact(q.size)}"', f'entry_price = "{format_exact(q.entry_price)}"',
                        f'margin_mode = "{q.margin_mode.value}"']
                if q.margin_mode.value == "isolated":
                    out.append(f'margin = "{_coins(q.margin, _code(q.instrument))}"')
        t = START_MS
        crash_at = self.n_marks * 2 // 5
        day = START_MS // 86_400_000
        for n in range(self.n_marks):
            inst = INSTS[n % 3]
            t += r.choice((1_000, 5_000, 30_000, 60_000))
            if t // 86_400_000 != day:
                day = t // 86_400_000
                out += ["", "[[events]]", f"time = {t}", 'type = "settle"']
            btc = inst != "ETH-USDT-SWAP"
            if crash_at <= n < crash_at + 30 and btc:      # the crash: ten BTC marks down in a row per instrument
                move = -Q(self.crash, 1000)
                if n - crash_at < 3:                        # thin the books below the longs' bankruptcy prices
                    bids, asks = self.book(inst, marks[inst], thin_below=marks[inst] * Q(100 - 2 * self.crash, 100))
                    out += ["", "[[events]]", f"time = {t}", 'type = "book"', f'instrument = "{inst}"',
                            f"bids = {_levels(bids)}", f"asks = {_levels(asks)}"]
            elif crash_at + 30 <= n < crash_at + 90 and btc:  # the recovery
                move = Q(self.crash, 2000)
            else:
                move = Q(r.randint(-30, 30), 10_000)
            m = _tick(inst, marks[inst] * (1 + move))
            marks[inst] = min(max(m, BASE[inst] * Q(1, 2)), BASE[inst] * Q(3, 2))
            out += ["", "[[events]]", f"time = {t}", 'type = "mark"', f'instrument = "{inst}"',
                    f'price = "{format_exact(marks[inst])}"']
            if n == crash_at + 90:
                for i in INSTS:
                    code = _code(i)
                    out += ["", "[[events]]", f"time = {t}", 'type = "top_up"', f'fund = "{FUND[i]}"',
                            f'amount = "{_coins(TOP_UP[code], code)}"']
            if n % self.book_every == self.book_every - 1 and not (crash_at <= n < crash_at + 30):
                bids, asks = self.book(inst, marks[inst])
                out += ["", "[[events]]", f"time = {t}", 'type = "book"', f'instrument = "{inst}"',
                        f"bids = {_levels(bids)}", f"asks = {_levels(asks)}"]
        return "\n".join(out) + "\n"


def _levels(levels: list) -> str:
    return "[" + ", ".join(f'["{format_exact(p)}", "{format_exact(q)}"]' for p, q in levels) + "]"


def generate(accounts: int = 1000, marks: int = 10_000, seed: int = 14, book_every: int = 20, crash: int = 15) -> str:
    """The scenario's TOML text (deterministic in its arguments)."""
    return Gen(seed, accounts, marks, book_every, crash).scenario()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=1000, help="accounts (default 1,000)")
    ap.add_argument("--marks", type=int, default=10_000, help="mark events (default 10,000)")
    ap.add_argument("--seed", type=int, default=14, help="random seed (default 14)")
    ap.add_argument("--book-every", type=int, default=20, help="a book refresh every N marks (default 20)")
    ap.add_argument("--crash", type=int, default=15,
                    help="the crash: ten marks of each BTC instrument down by this many tenths of a percent each (default 15)")
    ap.add_argument("--out", required=True, help="the scenario file to write")
    args = ap.parse_args(argv)
    text = generate(args.accounts, args.marks, args.seed, args.book_every, args.crash)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"wrote {args.out}: {args.accounts} accounts, {args.marks} marks", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
