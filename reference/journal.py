"""The double-entry journal (JRN-*): legs, entries, the balancing rule and the balance fold.

Every movement of value between accounts is an :class:`Entry` whose :class:`Leg` amounts sum to
zero in each currency (JRN-001).  Balances are never kept by hand: they are the fold of the
journal (JRN-002), and :func:`recompute` folds a list of entries from nothing (JRN-003), so that
the incremental balances of a :class:`Ledger` can be checked against a plain recomputation.

Account names: ``user:<account id>``, ``fund:<fund id>`` (the fund's settled balance),
``pending:<fund id>`` (results accrued since the last 16:00 HKT settlement),
``engine:<fund id>`` (the liquidation engine's cash for that fund's contracts), ``venue`` (fee
income), ``platform`` (the owner's treasury: top-ups and withdrawals).  A leg's amount is an
``int`` of the currency's smallest unit, positive when value flows *into* the account.

The rule functions are written over :mod:`backstop.reference.num` only, so that the proofs in
``backstop.proofs.fund`` call them with Z3 amounts.  Leg/Entry are unvalidated frozen records
(fields may be Z3 terms); :meth:`Ledger.post` validates a concrete entry before booking it
(checks in :mod:`backstop.reference.fundbook`) and refuses an unbalanced one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from backstop.reference import num

__all__ = ["Leg", "Entry", "Ledger", "currencies_of", "entry_imbalance", "entry_balances",
           "entry_is_empty", "apply_entry", "recompute", "balance_of", "total"]


@dataclass(frozen=True, slots=True)
class Leg:
    """One side of an entry: ``amount`` units of ``currency`` into ``account`` (negative: out of it)."""

    account: str
    currency: str
    amount: Any


@dataclass(frozen=True, slots=True)
class Entry:
    """A journal entry: a time (ms since the epoch, UTC), a kind, its legs, the rule IDs that
    produced it and a free-text memo."""

    time_ms: Any
    kind: str
    legs: tuple[Leg, ...]
    rules: tuple[str, ...] = ()
    memo: str = ""


def currencies_of(entry: Entry) -> tuple[str, ...]:
    """The currencies an entry's legs name, sorted (concrete structure, not a number)."""
    return tuple(sorted({leg.currency for leg in entry.legs}))


def entry_imbalance(entry: Entry, currency: str) -> Any:
    """JRN-001: the sum of an entry's legs in one currency (zero when the entry balances in it)."""
    total_ = 0
    for leg in entry.legs:
        total_ = total_ + num.ite(leg.currency == currency, leg.amount, 0)
    return total_


def entry_balances(entry: Entry) -> Any:
    """JRN-001: an entry balances when, in every currency it names, its legs sum to zero."""
    return num.all_([entry_imbalance(entry, c) == 0 for c in currencies_of(entry)])


def entry_is_empty(entry: Entry) -> Any:
    """JRN-002: an entry moves nothing when every leg is zero (such entries are not booked)."""
    return num.all_([leg.amount == 0 for leg in entry.legs])


def balance_of(balances: Mapping[tuple[str, str], Any], account: str, currency: str) -> Any:
    """JRN-002: an account's balance in a currency (zero for an account never booked)."""
    return balances.get((account, currency), 0)


def apply_entry(balances: Mapping[tuple[str, str], Any], entry: Entry) -> dict[tuple[str, str], Any]:
    """JRN-002: the balances after booking one entry: each leg's amount added to its account."""
    out = dict(balances)
    for leg in entry.legs:
        out[(leg.account, leg.currency)] = balance_of(out, leg.account, leg.currency) + leg.amount
    return out


def recompute(entries: Iterable[Entry]) -> dict[tuple[str, str], Any]:
    """JRN-003: the balances of a journal, folded from nothing over its entries in order."""
    out: dict[tuple[str, str], Any] = {}
    for e in entries:
        out = apply_entry(out, e)
    return out


def total(balances: Mapping[tuple[str, str], Any], currency: str) -> Any:
    """JRN-001: the sum of every account's balance in one currency (zero for a balanced journal)."""
    t = 0
    for (account, ccy), amount in sorted(balances.items(), key=lambda kv: kv[0]):
        t = t + num.ite(ccy == currency, amount, 0)
    return t


@dataclass(frozen=True)
class Ledger:
    """A journal and its balances (the incremental fold of the journal).

    :meth:`post` returns a new ledger; the receiver is never changed.  An entry that is malformed
    or does not balance per currency is refused with :class:`InvalidInput` naming the field and
    JRN-001; an entry whose legs are all zero is accepted and not booked.
    """

    entries: tuple[Entry, ...] = ()
    balances: Mapping[tuple[str, str], int] = field(default_factory=dict)

    def post(self, entry: Entry) -> "Ledger":
        from backstop.reference import fundbook  # validation lives with the plumbing
        fundbook.check_entry(entry)
        return fundbook.book_entry(self, entry)

    def balance(self, account: str, currency: str) -> int:
        return balance_of(self.balances, account, currency)  # type: ignore[no-any-return]  # balance_of returns a Number (Any): an int, or a Z3 term in the proofs

    def recompute(self) -> dict[tuple[str, str], int]:
        return recompute(self.entries)
