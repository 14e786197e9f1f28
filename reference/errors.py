"""Errors raised by the reference implementation.

Every error carries the offending field, the offending value and, where one applies, the rule ID
whose precondition was broken, so that a caller (or a conformance runner in another language)
can tell *which* input was refused and *why* without parsing prose.  A refused input never
changes any state: all checks run before anything is built.

::

    BackstopError
     +-- KernelTypeError        a non-exact number reached the numeric kernel (float, bool, ...)
     +-- InvalidInput           a value type refused a field (also a ValueError)
     |    +-- CurrencyMismatch  an amount in the wrong currency for its instrument or fund
     |    +-- UnknownInstrument a position or request names an instrument the profile lacks
     |    +-- OutOfTierRange    a position larger than the last tier of its table
     +-- ProfileError           a venue profile failed validation on load (names the field path)

Outside ``reference/``, every other error of the package derives from :class:`BackstopError` too
(``tests/unit/test_error_base.py`` walks every module): ``backstop.checktrace.TraceError`` (a log
that cannot be read), ``backstop.conform.VectorError`` and ``CannotStart`` (a vector file, an
implementation that does not start), ``backstop.proofs.concolic.HarnessError`` (a value escaped
its Z3 term: fail closed) and ``backstop.proofs.registry.Inconclusive`` (a proof that decided nothing).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BackstopError", "KernelTypeError", "InvalidInput", "CurrencyMismatch",
    "UnknownInstrument", "OutOfTierRange", "ProfileError",
]


class BackstopError(Exception):
    """Base of every error raised by backstop."""


class KernelTypeError(BackstopError, TypeError):
    """Raised when a value that is not an exact number (float, bool, Decimal, str, NaN, inf)
    reaches the numeric kernel."""


class InvalidInput(BackstopError, ValueError):
    """Raised by a value type or an entry point when a field is refused.

    ``field`` is the dotted path of the field (``position.size``), ``value`` what was given,
    ``rule`` the rule ID whose precondition it breaks (may be empty), ``reason`` a sentence.
    """

    def __init__(self, field: str, value: Any, reason: str, rule: str = "") -> None:
        self.field, self.value, self.reason, self.rule = field, value, reason, rule
        where = f" [{rule}]" if rule else ""
        super().__init__(f"{field}: {reason} (got {value!r}){where}")


class CurrencyMismatch(InvalidInput):
    """Raised when an amount is given in a currency other than the one its rule requires."""


class UnknownInstrument(InvalidInput):
    """Raised when an instrument ID is not defined by the active venue profile."""


class OutOfTierRange(InvalidInput):
    """Raised when a position's tier basis lies above the cap of the last tier of its table."""


class ProfileError(InvalidInput):
    """Raised when a venue profile fails validation; ``field`` is the path in the profile file
    (``tier_tables.BTC.tiers[2].mmr``)."""
