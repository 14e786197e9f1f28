"""``backstop simulate``: run a scenario file through the reference step function, end to end.

The command (:func:`register_cli`, :func:`cmd_simulate`, ``python -m backstop.simulate``) and the
public face of the three modules it is built from, re-exported here for users of
``backstop.simulate``:

* ``backstop.scenario`` -- the scenario loader (:func:`load_scenario`, :class:`Scenario`,
  :class:`SourceMap`; a refused file gets one error naming the file, the line and the field path,
  such as ``examples/crash.toml:42: events[3].price: must be > 0 (got '-5')``);
* ``backstop.simulate_run`` -- the run (:func:`run_scenario`) and the files it writes
  (:func:`write_outputs`: ``events.jsonl``, ``trace.jsonl``, ``final_state.json``, ``fund_<id>.csv``,
  ``chart.svg``; byte-identical for the same scenario);
* ``backstop.simulate_chart`` -- ``chart.svg`` (:func:`chart_svg`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from backstop.reference.errors import BackstopError
from backstop.scenario import (EVENT_TYPES, EventSpec, Scenario, SourceMap, dotted, load_scenario, load_scenario_data,
                               load_scenario_text)
from backstop.simulate_chart import chart_svg
from backstop.simulate_run import (EVENTS_FORMAT, LIQUIDATION_KINDS, TRACE_FORMAT, RunResult, final_state_json, fund_csv,
                                   fund_ids_of, fund_points, initial_records, initial_state, is_liquidation, log_header,
                                   run_scenario, step_event, summary, trace_lines, write_outputs)

__all__ = ["SourceMap", "Scenario", "EventSpec", "load_scenario", "load_scenario_text", "load_scenario_data", "initial_state",
           "step_event", "RunResult", "run_scenario", "write_outputs", "trace_lines", "TRACE_FORMAT", "chart_svg", "register_cli",
           "cmd_simulate", "main", "EVENT_TYPES", "EVENTS_FORMAT", "LIQUIDATION_KINDS", "dotted", "log_header", "summary",
           "final_state_json", "fund_csv", "fund_ids_of", "fund_points", "is_liquidation", "initial_records"]

EXIT_OK, EXIT_FAIL, EXIT_INPUT = 0, 1, 2  # as backstop.cli


# ================================================================ command line

def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``backstop simulate`` to an argparse subparsers object."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "simulate", help="run a scenario file end to end (event log, final state, fund history, chart)",
        description="Run a scenario (TOML; see examples/README.md) through the reference step function and "
                    "write DIR/events.jsonl, DIR/trace.jsonl, DIR/final_state.json, DIR/fund_<id>.csv and DIR/chart.svg.")
    p.add_argument("file", metavar="FILE", help="scenario file (TOML)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--check", action="store_true",
                   help="check every invariant after every event; exit 1 naming the first violation")
    p.add_argument("--quiet", action="store_true", help="print only the last line (or the violation)")
    p.set_defaults(func=cmd_simulate)
    return p


def _print_summary(res: RunResult, paths: list[Path], out: Any) -> None:
    s = summary(res)
    scn = res.scenario
    print(f"scenario {scn.name or scn.source} (profile {scn.profile.name}): {s['events']} events, "
          f"{s['records']} records", file=out)
    print(f"  liquidations: {s['liquidations']} ({s['partial_liquidations']} partial steps, "
          f"{s['full_liquidations']} full)   ADL fills: {s['adl_fills']}", file=out)
    kinds = ", ".join(f"{k} {v}" for k, v in s["records_by_kind"].items())
    print(f"  records by kind: {kinds}", file=out)
    for fid, f in s["funds"].items():
        print(f"  fund {fid}: opening {f['opening']}, final {f['available']} {f['currency']} available "
              f"({f['settled']} settled), lowest {f['lowest_available']}, highest {f['highest_available']}", file=out)
    print(f"  wrote {', '.join(str(p) for p in paths)}", file=out)


def cmd_simulate(args: argparse.Namespace, out: Any = None) -> int:
    out = out or sys.stdout
    scn = load_scenario(args.file)
    res = run_scenario(scn, check=args.check)
    paths = write_outputs(res, args.out)
    rate = res.processed / res.seconds if res.seconds > 0 else 0.0
    if not args.quiet:
        _print_summary(res, paths, out)
    if res.violation:
        print(f"error: {scn.where(res.violation_event)} (type {scn.events[res.violation_event].type}): "
              f"invariant violated: {res.violation}", file=sys.stderr)
        return EXIT_FAIL
    checked = ", every invariant checked after every event" if args.check else ""
    print(f"simulated {res.processed} events in {res.seconds:.3f} s ({rate:,.0f} events/s){checked}", file=out)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m backstop.simulate FILE --out DIR [--check] [--quiet]``."""
    ap = argparse.ArgumentParser(prog="backstop")
    sub = ap.add_subparsers(dest="command")
    register_cli(sub)
    args = ap.parse_args(["simulate", *(sys.argv[1:] if argv is None else argv)])
    try:
        code: int = args.func(args)  # the command's exit status (argparse's Namespace is untyped)
        return code
    except BackstopError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
