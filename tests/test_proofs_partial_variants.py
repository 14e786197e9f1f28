"""LIQ-004..LIQ-007, INV-021, INV-022 on venues that tier by notional value, with partial liquidation
switched on.

No shipped profile but okx allows partial liquidation, and okx tiers by size: without these
variants the notional branch of LIQ-005 (``cap / (contract value x price)``, MM valued at mark for
binance and at entry for bybit, with deductions) would be proved nowhere.  The variants are binance
and bybit with ``liquidation.partial = "two_tiers"``.

Known limits (these variants are not shipped; every obligation is proved on the shipped profiles):
on binance+partial (notional tiers with deductions, MM at mark) OBL-LIQ-006 (5 unrolled steps),
OBL-LIQ-006b and OBL-LIQ-007c do not finish within their limits, nor does OBL-LIQ-007c on
bybit+partial; they are proved for okx, and OBL-LIQ-006/006b for bybit+partial.

The whole loop on these variants: OBL-INV-025j (``NotionalScenario``), where a cross partial step
closes the whole position (spec/99-sources.md C74), is among the instances proved here (its rules
include LIQ-005 and INV-022).
"""

from __future__ import annotations

import dataclasses

import pytest

from backstop.proofs.kernel import prove
from backstop.proofs.registry import instances
from backstop.reference.profile import PartialRule, load_profile

ONLY = ["LIQ-004", "LIQ-005", "LIQ-006", "LIQ-007", "INV-021", "INV-022"]
SKIP = {("binance", "OBL-LIQ-006"), ("binance", "OBL-LIQ-006b"), ("binance", "OBL-LIQ-007c"),
        ("bybit", "OBL-LIQ-007c")}  # see the module docstring


def partial_variant(name: str):
    p = load_profile(name)
    return dataclasses.replace(p, name=f"{name}+partial",
                               liquidation=dataclasses.replace(p.liquidation, partial=PartialRule.TWO_TIERS))


def _cases():
    out = []
    for name in ("binance", "bybit"):
        prof = partial_variant(name)
        for inst in instances(prof, only=ONLY):
            if (name, inst.obligation.id) in SKIP:
                continue
            out.append(pytest.param(inst, id=f"{prof.name}:{inst.key}"))
    return out


@pytest.mark.rules("LIQ-004", "LIQ-005", "LIQ-006", "LIQ-007", "INV-021", "INV-022")
@pytest.mark.parametrize("inst", _cases())
def test_liquidation_obligation_is_proved_on_a_notional_partial_variant(inst):
    r = prove(inst)
    assert r.verdict == "proved", f"{inst.key}: {r.verdict} {r.detail}"
