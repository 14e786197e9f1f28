"""Regions of the transition (issue 11, spec/99-sources.md C83): proofs/regions_transition.py.

The domain is OBL-INV-024's loop (proofs/loop.py LoopScenario): A long 4 lots, B short 3, C long 2
(isolated, entry 20,000; A's margin 2 % or 8 %, B's 10 %, C's 5 % of notional), D none; one bid and
one ask level of 1 lot; two marks, the second one second after 16:00 HKT; every cash balance and the
fund's opening balance free.  The default suite enumerates a few price rows per profile (the whole
16 rows take a minute or more per profile: run by hand with ``backstop vectors --rule TRN-001``).

The hand-derived numbers use okx's BTC-USDT-SWAP (spec/profiles/okx.toml: contract value 0.01 BTC,
lot 0.01 contract, USDT with 6 decimals, tier 1 for these sizes; okx does not put the close fee in the
bankruptcy price).  A lot is 0.01 x 0.01 = 0.0001 BTC, so a position of n lots at entry 20,000 has
notional n x 2 USDT and a move of the mark by d moves its PnL by n x 0.0001 x d USDT; an isolated
long's bankruptcy price is entry - margin / (n x 0.0001), a short's entry + margin / (n x 0.0001).
"""

from __future__ import annotations

import re
from fractions import Fraction

import pytest

from backstop.inputs import evaluate
from backstop.proofs import regions as RG
from backstop.proofs import regions_transition as RT
from backstop.proofs.loop import T0, LoopScenario, loop_instrument
from backstop.reference.profile import load_profile

PROFILES = ("okx", "binance", "bybit")
# the rows of LoopScenario.GRID the default suite enumerates: index = 8 x (A's margin 8 %) + 2 x (marks
# pair) + (bid/ask pair); row 0: 2 %, marks 0.9 / 0.9 x entry, bid/ask 0.95 / 1.05; row 10: 8 %, marks
# 0.9 / 1.2; row 14: 8 %, marks 1.2 / 0.8 (both with bid/ask 0.95 / 1.05 x entry)
ROWS = (0, 10, 14)


def _enumerate(name: str, rows: tuple[int, ...]) -> RG.RuleRegions:
    prof = load_profile(name)
    return RG.enumerate_regions(RT.isolated_spec(rows), prof, next(iter(prof.instruments.values())), 1)


@pytest.fixture(scope="module")
def okx_regions() -> RG.RuleRegions:
    return _enumerate("okx", ROWS)


def _yes(words: tuple[str, ...] | list[str]) -> set[str]:
    return {w[: -len(": yes")] for w in words if w.endswith(": yes")}


# ---------------------------------------------------------------- eval's answer, read independently

def _decided(request: dict, answer: dict) -> set[str]:
    """The decisions eval's records show, read from its JSON answer here (not by the module's
    ``decisions``): the words the region's atoms use."""
    out: set[str] = set()
    active = False
    events = [e for e in answer["events"] if e["event"] is not None]
    inst = request["scenario"]["events"][0]["instrument"]           # every event is a mark of this instrument
    positions = {a["id"] for a in request["scenario"]["accounts"]   # the accounts with a position on it
                 if any(p["instrument"] == inst for p in a.get("positions", []))}
    for k, e in enumerate(events, start=1):
        ev = f"event {k}"
        checks: dict[str, int] = {}
        adl: dict[str, int] = {}
        closed: set[str] = set()
        for r in e["records"]:
            a, kind = r.get("account", ""), r["kind"]
            if kind == "liquidation trigger":
                checks[a] = checks.get(a, 0) + 1
                out.add(f"{ev}: {a} check {checks[a]} ({r['margin_mode']}) decides {r['action']}")
            elif kind == "full liquidation":
                out.add(f"{ev}: {a} full liquidation ({r['margin_mode']}, {r['instrument']})")
                if r["instrument"] == inst:
                    closed.add(a)
            elif kind == "partial liquidation":
                out.add(f"{ev}: {a} partial step ({r['margin_mode']}, {r['instrument']})")
            elif kind == "cross partial refused":
                out.add(f"{ev}: {a} cross partial round refused, full instead")
            elif kind == "engine close":
                out.add(f"{ev}: {a} {r['why']} takeover filled on the book")
            elif kind == "bankrupt remainder":
                out.add(f"{ev}: {a} remainder left open")
                if r["in_adl_state"]:
                    out.add(f"{ev}: {a} remainder left while the market is closed to the fund")
            elif kind == "adl trigger":
                adl[a] = adl.get(a, 0) + 1
                n = f"{a}'s remainder" + (f" (check {adl[a]})" if adl[a] > 1 else "")
                out.add(f"{ev}: ADL fires on {n}")
                if Fraction(r["uncovered"]) > 0:
                    out.add(f"{ev}: trigger (a) at the ADL of {n}")
                if r["drawdown"]:
                    out.add(f"{ev}: trigger (b) at the ADL of {n}")
            elif kind == "adl":
                out.add(f"{ev}: ADL reduces {a}")
                if Fraction(r["new_size"]) == 0 and r["instrument"] == inst:
                    closed.add(a)
            elif kind in ("liquidation surplus", "liquidation deficit", "uncovered deficit", "surplus to user"):
                out.add(f"{ev}: {kind}" + (f" ({a})" if a else ""))
            elif kind == "adl state":
                active = r["active"]
        for a in sorted(positions - set(checks)):
            out.add(f"{ev}: {a} check 1 decides none")
        positions -= closed
        if active:
            out.add(f"{ev}: the fund is in the ADL state after the event")
    return out


def _hand_request(row: int, fund_coins: int) -> tuple[dict, dict]:
    """The eval request of the loop on ``row`` with every cash balance 0 and the fund's opening
    balance ``fund_coins`` USDT, and the decisions of that run (concrete)."""
    prof = load_profile("okx")
    sc = LoopScenario(prof, loop_instrument(prof))
    values = {"price path": row, **{n: 0 for n in sc.NAMES}}
    values["fund"] = fund_coins * 10 ** 6
    out = sc.run(values)
    req = RT.scenario_request(prof, T0, out["states"][0], [
        {"time": t, "type": "mark", "instrument": "BTC-USDT-SWAP", "price": RT.format_exact(m)}
        for t, m in zip((T0 + 500, T0 + 1_500), out["marks"])])
    return req, RT.decisions(out, "BTC-USDT-SWAP")


# ---------------------------------------------------------------- (1) complete on every shipped profile

@pytest.mark.rules("TRN-001", "TRN-005", "TRN-006")
@pytest.mark.parametrize("name", PROFILES)
def test_trn001_regions_complete_on_every_profile(name):
    rr = _enumerate(name, (0,))
    assert rr.complete, rr.note
    assert rr.operation == "transition" and rr.function == "process_event"
    # row 0 (marks 0.9 x entry twice) liquidates A and C at the first mark on every profile; the fund's
    # opening balance (free) decides whether the engine fills and whether ADL fires: several regions
    assert len(rr.regions) >= 2
    assert all(any(w.startswith("event 1: A full liquidation") and w.endswith("yes") for w in g.constraints)
               for g in rr.regions)
    assert len({g.id for g in rr.regions}) == len(rr.regions)


def test_trn001_okx_subset_complete(okx_regions):
    assert okx_regions.complete, okx_regions.note
    rows = {int(re.search(r"price row (\d+)", g.description).group(1)) for g in okx_regions.regions}
    assert rows == set(ROWS)


# ---------------------------------------------------------------- (2) three regions checked by hand

def _region_of(rr: RG.RuleRegions, decided: dict) -> RG.Region:
    yes = {w for w, v in decided.items() if v}
    hits = [g for g in rr.regions if _yes(g.constraints) == yes]
    assert len(hits) == 1, (yes, [sorted(_yes(g.constraints)) for g in rr.regions])
    return hits[0]


def _hand(rr: RG.RuleRegions, row: int, fund_coins: int, expected: set[str]) -> set[str]:
    """The region of the loop on ``row`` (cash 0, the fund ``fund_coins`` USDT) holds the decisions
    ``expected``, and so do eval's answers on that input and on the region's witness; returns the
    region's decisions."""
    req, decided = _hand_request(row, fund_coins)
    got = _yes(_region_of(rr, decided).constraints)
    assert expected <= got
    witness = _region_of(rr, decided).request
    assert expected <= _decided(req, evaluate(req)) and expected <= _decided(witness, evaluate(witness))
    return got


@pytest.mark.rules("TRN-001", "TRN-005", "TRN-006", "ADL-003", "ENG-006", "LIQ-004")
def test_trn001_hand_row0_empty_fund_adl(okx_regions):
    # row 0, every cash 0, fund 0.  Mark 1 = 0.9 x 20,000 = 18,000.
    # A: 4 lots, margin 2 % x 8 = 0.16 USDT, PnL 4 x 0.0001 x (-2,000) = -0.8: equity < 0 -> full;
    #    bankruptcy price 20,000 - 0.16 / 0.0004 = 19,600; the bid 19,000 is worse by 600 a BTC, so one lot
    #    costs the fund 0.0001 x 600 = 0.06 USDT > 0 available (ENG-006): nothing filled, 4 lots stay open.
    # B: short, in profit at 18,000: none.  C: 2 lots, margin 5 % x 4 = 0.2, PnL -0.4 -> full; bankruptcy
    #    20,000 - 0.2 / 0.0002 = 19,000 = the bid: costs the fund nothing -> 1 lot filled, 1 lot stays open.
    # A's remainder at the mark costs 0.0004 x 1,600 = 0.64 USDT > the fund: trigger (a), ADL fires and
    # reduces B (the only position on the other side); the fund enters the ADL state.
    got = _hand(okx_regions, 0, 0, {"event 1: A check 1 (isolated) decides full", "event 1: A remainder left open",
                "event 1: C check 1 (isolated) decides full", "event 1: C full takeover filled on the book",
                "event 1: C remainder left open", "event 1: B check 1 decides none", "event 1: ADL fires on A's remainder",
                "event 1: trigger (a) at the ADL of A's remainder", "event 1: ADL reduces B",
                "event 1: the fund is in the ADL state after the event"})
    assert "event 1: A full takeover filled on the book" not in got


@pytest.mark.rules("TRN-001", "TRN-002", "TRN-005", "ENG-001", "LIQ-004")
def test_trn001_hand_row10_rich_fund_no_adl(okx_regions):
    # row 10 (A's margin 8 %, marks 18,000 then 24,000, bid 19,000 / ask 21,000 of 1 lot), fund 1,000,000 USDT.
    # Event 1: A margin 0.64, PnL -0.8 -> full, bankruptcy 20,000 - 0.64 / 0.0004 = 18,400 < the bid 19,000:
    #   1 lot filled (a surplus), 3 lots open; C (bankruptcy 19,000) comes after A (TRN-002): the bid is gone,
    #   its 2 lots stay open.  The fund covers both remainders (0.0003 x 400 + 0.0002 x 1,000 = 0.32 USDT):
    #   no trigger (a); no drawdown: no ADL, not in the ADL state.
    # Event 2 (24,000): B short margin 0.6, PnL 3 x 0.0001 x (-4,000) = -1.2 -> full, bankruptcy
    #   20,000 + 0.6 / 0.0003 = 22,000 > the ask 21,000: 1 lot filled, 2 open; the fund covers: no ADL.
    got = _hand(okx_regions, 10, 1_000_000, {"event 1: A check 1 (isolated) decides full", "event 1: A full takeover filled on the book",
                "event 1: A remainder left open", "event 1: C check 1 (isolated) decides full",
                "event 1: C remainder left open", "event 1: B check 1 decides none",
                "event 2: B check 1 (isolated) decides full", "event 2: B full takeover filled on the book",
                "event 2: B remainder left open"})
    assert not any("ADL" in w for w in got)
    assert "event 1: C full takeover filled on the book" not in got


@pytest.mark.rules("TRN-001", "TRN-006", "ENG-001", "LIQ-004")
def test_trn001_hand_row14_short_first(okx_regions):
    # row 14 (A's margin 8 %, marks 24,000 then 16,000, bid 19,000 / ask 21,000), fund 1,000,000 USDT.
    # Event 1: only B is liquidated (as in row 10's event 2): 1 lot at 21,000, 2 lots open, no ADL; A and C
    #   gain: none.  Event 2 (16,000): A PnL 4 x 0.0001 x (-4,000) = -1.6 < -0.64 -> full, bankruptcy 18,400
    #   < the bid 19,000: 1 lot filled; C PnL -0.8 < -0.2 -> full, the bid is gone: 2 lots open.  B's
    #   remainder (short at 22,000) is in profit at 16,000; A's and C's cost 0.0003 x 2,400 + 0.0002 x 3,000
    #   = 1.32 USDT, covered: no ADL.
    got = _hand(okx_regions, 14, 1_000_000, {"event 1: B check 1 (isolated) decides full", "event 1: B full takeover filled on the book",
                "event 1: B remainder left open", "event 1: A check 1 decides none", "event 1: C check 1 decides none",
                "event 2: A check 1 (isolated) decides full", "event 2: A full takeover filled on the book",
                "event 2: A remainder left open", "event 2: C check 1 (isolated) decides full",
                "event 2: C remainder left open"})
    assert not any("ADL" in w for w in got)


# ---------------------------------------------------------------- (3) every witness accepted, taking its decisions

@pytest.mark.rules("TRN-001", "TRN-007")
def test_trn001_every_witness_accepted_and_takes_its_region(okx_regions):
    assert okx_regions.regions
    for g in okx_regions.regions:
        answer = evaluate(g.request)                       # a refusal raises: the test fails
        assert answer["invariants"]["value"] == "hold", g.id
        assert len([e for e in answer["events"] if e["event"] is not None]) == 2
        assert _decided(g.request, answer) == _yes(g.constraints), g.id


@pytest.mark.rules("TRN-001")
def test_trn001_region_ids_stable():
    # the same domain enumerated twice gives the same regions (ids, words, witnesses); the ids depend on
    # the domain's atoms, so a subset of rows has ids of its own (the vectors use the whole domain)
    one, two = _enumerate("okx", (0,)), _enumerate("okx", (0,))
    assert [(g.id, g.constraints, g.witness) for g in one.regions] == [(g.id, g.constraints, g.witness) for g in two.regions]


# ---------------------------------------------------------------- the wide loop of INV-025 (okx: cross margin)

# WideScenario.GRID rows (okx: P = BTC-USDT-SWAP, Q = ETH-USDT-SWAP): row = 16 x price row + 4 x fund + X's
# cash; row 53: price row 3 (H's margin 8 %, marks 19,000 then 21,000, bid 18,800, ask 21,200), the fund
# 1,000 USDT, X's cash 54,000; row 96: the same price row, X's long on Q bought at 550, X's cash 0, fund 0.
WIDE_ROWS = (53, 96)


@pytest.fixture(scope="module")
def wide_regions() -> RG.RuleRegions:
    from backstop.proofs.loop_wide import WideScenario
    prof = load_profile("okx")
    return RG.enumerate_regions(RT.wide_spec(WideScenario, WIDE_ROWS), prof, next(iter(prof.instruments.values())), 1)


def _cross_words(g: RG.Region) -> set[str]:
    return {w for w in _yes(g.constraints) if w.startswith("event") and " X " in w}


@pytest.mark.rules("TRN-003", "TRN-004", "LIQ-008")
def test_trn004_wide_rows_complete_and_witnesses_take_their_regions(wide_regions):
    assert wide_regions.complete, wide_regions.note
    assert len(wide_regions.regions) == 2   # H's, S's and D's cash (free) decide nothing on these rows
    for g in wide_regions.regions:
        answer = evaluate(g.request)
        assert answer["invariants"]["value"] == "hold", g.id
        assert _decided(g.request, answer) == _yes(g.constraints), g.id


@pytest.mark.rules("TRN-003", "TRN-004", "LIQ-008", "LIQ-009")
def test_trn003_hand_wide_row53_partial_round(wide_regions):
    # X: short 3,000.01 BTC-USDT-SWAP contracts (the tier-2 cap 3,000 + 1 lot: tier 3) = 30.0001 BTC at
    # 19,700, and long 100,000 lots = 1,000 ETH contracts = 100 ETH at 1,100 (mark 1,000, tier 1 of ETH's
    # caps 5,000 / 30,000 ...), cash 54,000.  At the second mark 21,000 its equity is
    # 54,000 - 30.0001 x 1,300 - 100 x 100 = 4,999.87; its requirement (MMR + the 0.05 % close fee) at its
    # tiers 1.05 % x 630,002.1 + 0.45 % x 100,000 = 7,065.02, at tier-1 rates 0.45 % x 630,002.1 + 450 =
    # 3,285.01: 3,285.01 < 4,999.87 <= 7,065.02 -> PARTIAL (LIQ-008).  Only the BTC leg is at tier >= 3
    # (TRN-003): it is cut to tier 1 (500 contracts), realizing -25.0001 x 1,300 = -32,500.13 and a fee of
    # 0.05 % x 25.0001 x 21,000 = 262.50: the balance after, 54,000 - 32,762.63 = 21,237.37 >= 0, so the
    # round is funded (TRN-004) and no leg is liquidated in full.  At the first mark (19,000) the short
    # gains: no check.
    (g,) = [g for g in wide_regions.regions if "row 53" in g.description]
    got = _cross_words(g)
    assert {"event 1: X check 1 decides none", "event 2: X check 1 (cross) decides partial",
            "event 2: X partial step (cross, BTC-USDT-SWAP)"} <= got
    assert not any("refused" in w or "full liquidation" in w or "ETH-USDT-SWAP" in w for w in got)
    assert _cross_words(g) <= _decided(g.request, evaluate(g.request))


@pytest.mark.rules("TRN-004", "LIQ-008")
def test_trn004_hand_wide_row96_refused_round(wide_regions):
    # as row 53 but X's ETH long bought at 550 and no cash: equity 0 - 39,000.13 + 100 x 450 = 5,999.87,
    # again in (3,285.01, 7,065.02]: PARTIAL; the same step would leave 0 - 32,500.13 - 262.50 < 0, so the
    # round is refused (TRN-004) and X is liquidated in full: both legs.
    (g,) = [g for g in wide_regions.regions if "row 96" in g.description]
    got = _cross_words(g)
    assert {"event 2: X check 1 (cross) decides partial", "event 2: X cross partial round refused, full instead",
            "event 2: X full liquidation (cross, BTC-USDT-SWAP)", "event 2: X full liquidation (cross, ETH-USDT-SWAP)"} <= got
    assert not any("partial step" in w for w in got)
    assert got <= _decided(g.request, evaluate(g.request))
