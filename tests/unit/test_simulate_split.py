"""``backstop/simulate.py`` split into the scenario loader, the run and its outputs, the chart and
the command (issue 12, "A public face"): each module documents itself and lists its public names,
``backstop.simulate`` still offers every name it offered (the same objects), and the split keeps
the start-up behaviour -- a concrete ``backstop eval`` loads none of them, and loading a scenario
imports neither the step function nor matplotlib."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULES = ("backstop.scenario", "backstop.simulate_run", "backstop.simulate_chart", "backstop.simulate")
# the public names of backstop.simulate before the split (its __all__ and the names its importers used)
BEFORE = ["SourceMap", "Scenario", "EventSpec", "load_scenario", "load_scenario_text", "load_scenario_data",
          "initial_state", "step_event", "RunResult", "run_scenario", "write_outputs", "trace_lines", "TRACE_FORMAT",
          "chart_svg", "register_cli", "cmd_simulate", "main", "EVENT_TYPES", "summary", "is_liquidation",
          "fund_ids_of", "EXIT_OK", "EXIT_FAIL", "EXIT_INPUT", "LIQUIDATION_KINDS", "EVENTS_FORMAT", "log_header",
          "final_state_json", "fund_csv", "fund_points", "dotted"]


@pytest.mark.parametrize("name", MODULES)
def test_each_module_has_a_docstring_and_an_all_of_names_it_defines(name):
    mod = importlib.import_module(name)
    assert mod.__doc__ and len(mod.__doc__.split()) > 20
    assert mod.__all__ and len(set(mod.__all__)) == len(mod.__all__)
    assert all(hasattr(mod, n) for n in mod.__all__), [n for n in mod.__all__ if not hasattr(mod, n)]


def test_the_facade_offers_every_name_it_offered_and_the_same_objects():
    import backstop.simulate as SIM
    assert [n for n in BEFORE if not hasattr(SIM, n)] == []
    for name in MODULES[:3]:
        mod = importlib.import_module(name)
        for n in mod.__all__:
            if n in SIM.__all__:
                assert getattr(SIM, n) is getattr(mod, n), (name, n)
    # the facade re-exports the public names of the three (those its users may need)
    assert set(SIM.__all__) >= set(BEFORE) - {"EXIT_OK", "EXIT_FAIL", "EXIT_INPUT"}


def _fresh(code: str) -> list:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=str(ROOT))
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_a_concrete_eval_loads_none_of_the_simulate_modules():
    code = ("import sys, json, contextlib, io\nfrom backstop.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    rc = main(['eval', {str(ROOT / 'examples' / 'eval-okx-long.json')!r}])\n"
            f"print(json.dumps([rc, sorted(m for m in {list(MODULES)!r} if m in sys.modules)]))")
    assert _fresh(code) == [0, []]


def test_loading_a_scenario_imports_neither_the_step_function_nor_matplotlib():
    code = ("import sys, json\nfrom backstop.scenario import load_scenario\n"
            f"scn = load_scenario({str(ROOT / 'examples' / 'crash.toml')!r})\n"
            "heavy = ['backstop.reference.step', 'matplotlib', 'backstop.charts', 'backstop.simulate_run', 'z3']\n"
            "print(json.dumps([scn.name, len(scn.events), sorted(m for m in heavy if m in sys.modules)]))")
    # crash.toml: 11 events (README "Simulate a scenario")
    assert _fresh(code) == ["crash", 11, []]


def test_the_command_module_imports_no_plotting_until_a_chart_is_drawn():
    code = ("import sys, json\nimport backstop.simulate\n"
            "print(json.dumps(sorted(m for m in ['matplotlib', 'backstop.charts', 'backstop.reference.step', 'z3']"
            " if m in sys.modules)))")
    assert _fresh(code) == []
