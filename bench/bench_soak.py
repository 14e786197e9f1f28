"""Seeded soak of the whole loop: random events through ``step.process_event`` over many accounts,
every invariant checked after every event (``step.check_invariants``: incremental when the state before
the event was found clean, the same verdicts as the full check, C64; ``--full-check`` for
``step.check_invariants_full`` everywhere).

Episodes of ``--episode`` events each start from a fresh random world of ``--accounts`` accounts
(okx profile: BTC-USDT-SWAP and ETH-USDT-SWAP linear, BTC-USD-SWAP inverse; isolated and cross
positions on both sides, some above tier 3 so partial steps happen), thin order books and small
insurance funds, then run a random mix of mark moves (random walk with crashes and spikes), book
updates, platform top-ups and withdrawals and settlement times.  A world only loses positions
(there is no order entry), which is why it is renewed.  Mark moves: 8 % crashes (-8 to -30 %),
6 % spikes (+8 to +30 %), 26 % nudges (within 0.5 %, by 0.01 %: the partial band), the rest within
3 %.  Each episode also has a few "whales": isolated positions above tier 3 at the highest
leverage healthy at the opening mark, so that partial steps (LIQ-005) happen.  After every event both
``step.check_invariants`` and the independent check ``tests/valuation.py`` (conservation with its
own valuation, the funds, the ADL state, no socialization, the liquidation loss bound) run.

    python bench/bench_soak.py [--events 1000000] [--accounts 120] [--episode 400] [--seed 13]
    python bench/bench_soak.py --events 1000000 --shard 1/2 --counts shard1.json   # and --shard 2/2
    python bench/bench_soak.py --merge shard1.json shard2.json

Episode ``e`` (0, 1, 2, ...) draws from its own random source, seeded by ``(seed, e)``, and starts
at its own time, so the soak is the same set of episodes however it is split: ``--shard I/N`` runs
the episodes ``e`` with ``e % N == I - 1`` (its share of ``--events``), and ``--merge`` adds the
shards' counts into the one table (events/s is then events over the sum of the shards' wall times,
a per-core rate).

Prints a table: events, accounts, liquidations (partial, full, isolated / cross), engine fills,
ADL triggers and fills, violations (must be 0; known issue-13 defects counted apart), events/s and
wall time.  Exit status 1 on any violation that is not a known defect.
"""

from __future__ import annotations

import argparse
import collections
import random
import sys
import time
from fractions import Fraction as Q
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from valuation import KNOWN_DEFECTS, check_transition  # noqa: E402

from backstop.reference import liquidation as L  # noqa: E402  (the generator only: a world starts healthy)
from backstop.reference import step as S  # noqa: E402
from backstop.reference.engine import Level  # noqa: E402
from backstop.reference.errors import InvalidInput  # noqa: E402
from backstop.reference.profile import load_profile  # noqa: E402
from backstop.reference.types import Account, Position  # noqa: E402

P = load_profile("okx")
INSTS = ("BTC-USDT-SWAP", "ETH-USDT-SWAP", "BTC-USD-SWAP")
BASE = {"BTC-USDT-SWAP": Q(30_000), "ETH-USDT-SWAP": Q(2_000), "BTC-USD-SWAP": Q(30_000)}
FUND = {i: f"perpetual_futures/{P.instruments[i].underlying}/{P.instruments[i].settle_currency.code}" for i in INSTS}
UNIT = {"USDT": 10**6, "BTC": 10**8}
# the largest size kept in the world: below each table's last cap (tiers 3+ start above 3,000 BTC
# contracts and 30,000 ETH contracts)
WHALES = 6  # per episode, on top of --accounts
POSITIONS_PER_ACCOUNT = (0, 0, 1, 1, 1, 2, 3)  # drawn per account: flat accounts are the no-socialization witnesses
MAX_SIZE = {"BTC-USDT-SWAP": 20_000, "ETH-USDT-SWAP": 200_000, "BTC-USD-SWAP": 20_000}


def _tick(inst: str, x: Q) -> Q:
    t = P.instruments[inst].tick_size
    return max(t, (x // t) * t)


def _lot(inst: str, x: Q) -> Q:
    lot = P.instruments[inst].lot_size
    return max(lot, (x // lot) * lot)


def _value_coins(inst: str, size: Q, price: Q) -> Q:
    i = P.instruments[inst]
    return size * i.contract_value * price if i.kind.value == "linear" else size * i.contract_value / price


class World:
    """One episode's random source: accounts, books, events."""

    def __init__(self, rng: random.Random, n_accounts: int, t0: int) -> None:
        self.rng = rng
        self.t = t0
        accts = [self._account(f"u{k:04d}") for k in range(n_accounts)]
        accts += [self._whale(f"w{k}") for k in range(WHALES)]
        marks = dict(BASE)
        books = {i: self._book(i, marks[i]) for i in INSTS}
        funds = {FUND[i]: rng.choice([0, 0, 1, 10, 1_000, 50_000]) * UNIT[P.instruments[i].settle_currency.code]
                 for i in INSTS}
        self.state = S.initial_state(P, accts, marks, books, funds, t0)

    def _position(self, inst: str, side: str, mode: str) -> Position:
        r = self.rng
        big = r.random() < 0.25   # above tier 3: a partial step (LIQ-005) is possible
        hi = MAX_SIZE[inst] if big else MAX_SIZE[inst] // 10
        lo = hi // 4 if big else 1
        size = _lot(inst, Q(r.randint(lo, hi)) * Q(r.randint(1, 100), 100))
        entry = _tick(inst, BASE[inst] * Q(r.randint(95, 105), 100))
        scale = UNIT[P.instruments[inst].settle_currency.code]
        lev = r.choice([3, 5, 10, 20, 25, 50, 80])
        margin = 0 if mode == "cross" else int(_value_coins(inst, size, entry) * scale / lev)
        return Position(inst, side, size, entry, mode, margin)

    def _account(self, name: str) -> Account:
        r = self.rng
        ps, seen = [], set()
        for _ in range(r.choice(POSITIONS_PER_ACCOUNT)):
            inst, side, mode = r.choice(INSTS), r.choice(["long", "short"]), r.choice(["isolated", "cross"])
            if (inst, side) in seen:
                continue
            seen.add((inst, side))
            ps.append(self._position(inst, side, mode))
        bal = []
        for code in ("USDT", "BTC"):
            cross_value = sum(_value_coins(q.instrument, q.size, q.entry_price) for q in ps
                              if q.margin_mode.value == "cross" and P.instruments[q.instrument].settle_currency.code == code)
            lev = r.choice([2, 5, 10, 20, 40, 100])
            bal.append((code, int(cross_value * UNIT[code] / lev) + r.choice([0, 0, 1, 100, 10**4]) * UNIT[code] // 100))
        # the world starts healthy: nothing liquidatable at the opening marks (otherwise the first
        # event of another instrument would leave it so, LIQ-006)
        ps = [q for q in ps if q.margin_mode.value == "cross"
              or L.decide_action(P.instruments[q.instrument], P.margin, P.liquidation, q.terms(), BASE[q.instrument]) == L.NONE]
        for code, amount in bal:
            group = [q for q in ps if q.margin_mode.value == "cross" and P.instruments[q.instrument].settle_currency.code == code]
            if group and L.decide_cross_action(tuple((P.instruments[q.instrument], q.terms()) for q in group), P.margin,
                                               P.liquidation, amount, tuple(BASE[q.instrument] for q in group)) != L.NONE:
                ps = [q for q in ps if q not in group]
        return Account(name, tuple(bal), tuple(ps))

    def _whale(self, name: str) -> Account:
        """An isolated position above tier 3 at the opening mark, at the highest leverage that is
        healthy there: a small move takes it into the partial band (LIQ-005)."""
        r = self.rng
        inst = r.choice(INSTS)
        size = _lot(inst, Q(r.randint(MAX_SIZE[inst] // 4, MAX_SIZE[inst])))
        side = r.choice(["long", "short"])
        scale = UNIT[P.instruments[inst].settle_currency.code]
        for lev in (90, 60, 45, 30, 20, 10):
            q = Position(inst, side, size, BASE[inst], "isolated", int(_value_coins(inst, size, BASE[inst]) * scale / lev))
            if L.decide_action(P.instruments[inst], P.margin, P.liquidation, q.terms(), BASE[inst]) == L.NONE:
                return Account(name, (("USDT", 0), ("BTC", 0)), (q,))
        return Account(name, (("USDT", 0), ("BTC", 0)), ())

    def _book(self, inst: str, mark: Q) -> S.Book:
        r = self.rng
        n = r.choice([0, 1, 2, 3, 4])
        step = _tick(inst, mark * Q(r.randint(1, 30), 1000))
        depth = MAX_SIZE[inst] // 20
        bids = tuple(Level(mark - step * (k + 1), _lot(inst, Q(r.randint(0, depth)))) for k in range(n)
                     if mark - step * (k + 1) > 0)
        asks = tuple(Level(mark + step * (k + 1), _lot(inst, Q(r.randint(0, depth)))) for k in range(n))
        return S.Book(bids, asks)

    def event(self):
        r, st = self.rng, self.state
        x = r.random()
        self.t += r.choice([0, 1, 1000, 60_000, 3_600_000, 4 * 3_600_000])
        inst = r.choice(INSTS)
        if x < 0.55:
            m = st.mark(inst)
            y = r.random()
            move = (Q(r.randint(-30, -8), 100) if y < 0.08 else Q(r.randint(8, 30), 100) if y < 0.14
                    else Q(r.randint(-50, 50), 10_000) if y < 0.40 else Q(r.randint(-30, 30), 1000))
            m = _tick(inst, m * (1 + move))
            m = min(max(m, BASE[inst] / 4), BASE[inst] * 4)  # keep the world's prices in a band
            return S.MarkEvent(self.t, inst, _tick(inst, m))
        if x < 0.80:
            b = self._book(inst, st.mark(inst))
            return S.BookEvent(self.t, inst, b.bids, b.asks)
        code = P.instruments[inst].settle_currency.code
        if x < 0.88:
            return S.TopUpEvent(self.t, FUND[inst], r.choice([1, 10, 1_000, 20_000]) * UNIT[code])
        if x < 0.94:
            return S.WithdrawEvent(self.t, FUND[inst], r.choice([1, 10, 1_000, 20_000]) * UNIT[code])
        self.t += r.choice([0, 86_400_000])
        return S.SettleEvent(self.t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=10**6, help="events in all (default 1,000,000)")
    ap.add_argument("--accounts", type=int, default=120, help="accounts per episode (default 120)")
    ap.add_argument("--episode", type=int, default=400, help="events per episode (default 400)")
    ap.add_argument("--seed", type=int, default=13, help="random seed (default 13)")
    ap.add_argument("--show", type=int, default=5, help="violations to print (default 5)")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="stop (and say so) after this wall time, whatever --events says")
    ap.add_argument("--progress", type=int, default=10_000, help="a progress line every N events (0: none)")
    ap.add_argument("--full-check", action="store_true",
                    help="step.check_invariants_full after every event (default: step.check_invariants, which "
                         "checks incrementally when the state before the event was found clean)")
    ap.add_argument("--shard", default="1/1", metavar="I/N", help="run shard I of N (episodes e with e %% N == I-1)")
    ap.add_argument("--counts", metavar="FILE", help="also write the counts as JSON (for --merge)")
    ap.add_argument("--merge", nargs="+", metavar="FILE", help="print the table of shards' --counts files")
    args = ap.parse_args()
    if args.merge:
        return _merge(args.merge)
    shard, n_shards = (int(x) for x in args.shard.split("/"))
    if not 1 <= shard <= n_shards:
        ap.error(f"--shard {args.shard}: I must be between 1 and N")
    n_episodes = -(-args.events // args.episode)
    mine = [e for e in range(n_episodes) if e % n_shards == shard - 1]
    target = sum(min(args.episode, args.events - e * args.episode) for e in mine)
    counts: collections.Counter = collections.Counter()
    shown = 0
    first_bad = {}
    t0 = time.perf_counter()
    events = episodes = 0
    stopped = False
    for e in mine:
        if stopped:
            break
        rng = random.Random(f"{args.seed}:{e}")
        # each episode at its own time: 400 days apart, 50 slots (a world is fresh, so only the order within it matters)
        world = World(rng, args.accounts, 1_795_766_399_000 + (e % 50) * 400 * 86_400_000)
        episodes += 1
        counts["accounts"] += len(world.state.accounts)
        counts["positions"] += sum(len(a.positions) for a in world.state.accounts)
        counts["cross positions"] += sum(q.margin_mode.value == "cross" for a in world.state.accounts for q in a.positions)
        counts["inverse positions"] += sum(q.instrument == "BTC-USD-SWAP" for a in world.state.accounts for q in a.positions)
        for k in range(min(args.episode, args.events - e * args.episode)):
            if args.progress and events and events % args.progress == 0:
                el = time.perf_counter() - t0
                print(f"  {events} events, {el:.0f} s, {events / el:.0f} events/s, violations {counts['violations']}",
                      file=sys.stderr, flush=True)
            if args.max_seconds is not None and events % 100 == 0 and time.perf_counter() - t0 > args.max_seconds:
                stopped = True
                break
            ev = world.event()
            before = world.state
            try:
                after, recs = S.process_event(before, ev)
            except InvalidInput:
                if isinstance(ev, S.WithdrawEvent):  # above the withdrawable balance (INS-007): refused
                    counts["refused withdrawals"] += 1
                    events += 1
                    continue
                raise
            events += 1
            counts[type(ev).__name__] += 1
            for r in recs:
                key = r.kind
                if r.kind in ("partial liquidation", "full liquidation"):
                    key = f"{r.kind} ({r.get('margin_mode')})"
                elif r.kind == "adl trigger":
                    counts["adl trigger (a)" if r.get("uncovered") > 0 else "adl trigger (b) only"] += 1
                elif r.kind == "adl" and r.get("size_at_bankruptcy_price") > 0:
                    counts["adl fills at the bankruptcy price"] += 1
                counts[key] += 1
            check = S.check_invariants_full if args.full_check else S.check_invariants
            bad = [f"check_invariants: {b}" for b in check(before, after, recs)]
            vs = check_transition(before, ev, after, recs)
            # a known defect counts apart only while it is listed in KNOWN_DEFECTS (delete it there after the fix)
            bad += [str(v) for v in vs if v.known not in KNOWN_DEFECTS]
            for v in vs:
                if v.known in KNOWN_DEFECTS:
                    counts[f"known defect: {v.known}"] += 1
                    first_bad.setdefault(v.known, (episodes, k, str(v)))
            if bad:
                counts["violating events"] += 1
                counts["violations"] += len(bad)
                if shown < args.show:
                    shown += 1
                    print(f"episode {episodes} event {k} {ev}:", *bad, sep="\n  ", file=sys.stderr)
            world.state = after
    wall = time.perf_counter() - t0
    counts["events"], counts["episodes"], counts["wall"] = events, episodes, wall
    if args.counts:
        import json
        Path(args.counts).write_text(json.dumps({"seed": args.seed, "shard": args.shard, "target": target,
                                                 "stopped": stopped, "accounts_arg": args.accounts,
                                                 "counts": dict(counts), "first_bad": first_bad}))
    return _table(counts, args.seed, args.accounts, stopped, args.max_seconds, args.events, first_bad,
                  f" (shard {args.shard}: {events} of its {target} events)" if n_shards > 1 else "")


def _merge(files: list[str]) -> int:
    import json
    total: collections.Counter = collections.Counter()
    first_bad: dict = {}
    seeds, stopped, accounts = set(), False, set()
    for f in files:
        d = json.loads(Path(f).read_text())
        seeds.add(d["seed"])
        accounts.add(d["accounts_arg"])
        stopped |= d["stopped"]
        total.update(d["counts"])
        for k, v in d["first_bad"].items():
            first_bad.setdefault(k, tuple(v))
    return _table(total, "/".join(map(str, sorted(seeds))), "/".join(map(str, sorted(accounts))), stopped, None,
                  total["events"], first_bad, f" ({len(files)} shards merged; events/s per core)")


def _table(counts, seed, n_accounts, stopped, max_seconds, n_events, first_bad, note) -> int:
    events, episodes, wall = counts["events"], counts["episodes"], counts["wall"]
    rows = [("events", events), ("episodes", episodes), ("accounts (all episodes)", counts["accounts"]),
            ("accounts per episode", f"{n_accounts} + {WHALES} whales"), ("positions", counts["positions"]),
            ("  cross", counts["cross positions"]), ("  inverse", counts["inverse positions"])]
    for k in ("MarkEvent", "BookEvent", "TopUpEvent", "WithdrawEvent", "SettleEvent", "refused withdrawals",
              "liquidation trigger", "partial liquidation (isolated)", "partial liquidation (cross)",
              "full liquidation (isolated)", "full liquidation (cross)", "cross partial refused", "engine fill",
              "bankrupt remainder", "adl trigger", "adl trigger (a)", "adl trigger (b) only", "adl",
              "adl fills at the bankruptcy price", "adl state"):
        rows.append((k, counts[k]))
    for k in KNOWN_DEFECTS:
        rows.append((f"known defect hits: {k}", counts[f"known defect: {k}"]))
    rows += [("violations", counts["violations"]), ("violating events", counts["violating events"]),
             ("events/s", f"{events / wall:.0f}"), ("wall time (s)", f"{wall:.1f}")]
    print(f"\nsoak: seed {seed}, okx profile, every invariant checked after every event{note}"
          + (f" -- STOPPED by --max-seconds {max_seconds} before --events {n_events}" if stopped else ""))
    w = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{w}}  {v:>12}")
    for k, (ep, i, msg) in first_bad.items():
        print(f"first {k}: episode {ep} event {i}: {msg}")
    return 1 if counts["violations"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
