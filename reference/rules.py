"""The seam between the plumbing and the rules: one namespace of rule modules, passed in.

The plumbing (:mod:`~backstop.reference.step`, :mod:`~backstop.reference.fundbook`) imports no rule
module: every rule function it calls is reached through a :class:`Rules` value handed to it as
the argument ``R`` (default :data:`RULES`, the reference's own modules).  The bounded whole-loop
proof (``backstop.proofs.concolic``) hands it a namespace whose members run every rule function
under both interpretations, exact numbers and Z3 terms -- visibly, through this argument, with
nothing patched.  A rule call that does not go through ``R`` is refused by the kernel lint
(tests/test_kernel_lint.py), so a new import in the plumbing cannot step outside the proof.

=====  ====================================================  ===========
field  module                                                rule IDs
=====  ====================================================  ===========
``M``  :mod:`~backstop.reference.margin`                      MRG-*
``L``  :mod:`~backstop.reference.liquidation`                 LIQ-*
``E``  :mod:`~backstop.reference.engine`                      ENG-*
``A``  :mod:`~backstop.reference.adl`                         ADL-*
``F``  :mod:`~backstop.reference.fund`                        INS-*
``J``  :mod:`~backstop.reference.journal`                     JRN-*
``T``  :mod:`~backstop.reference.transition`                  TRN-*
=====  ====================================================  ===========
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backstop.reference import adl, engine, fund, journal, liquidation, margin, transition

__all__ = ["Rules", "RULES", "RULE_MODULES"]


@dataclass(frozen=True)
class Rules:
    """The rule modules the plumbing may call, by their short names."""

    M: Any
    L: Any
    E: Any
    A: Any
    F: Any
    J: Any
    T: Any


RULES = Rules(M=margin, L=liquidation, E=engine, A=adl, F=fund, J=journal, T=transition)

# the module names behind each field (the kernel lint refuses a direct call into any of them)
RULE_MODULES = {name: getattr(RULES, name).__name__ for name in ("M", "L", "E", "A", "F", "J", "T")}
