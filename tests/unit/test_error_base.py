"""Every error under the one error base (issue 12, "A public face"): each exception class defined
anywhere in the installed package (``backstop``, ``backstop.reference``, ``backstop.proofs``)
derives from :class:`backstop.reference.errors.BackstopError`, so a caller catches one type."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import backstop
from backstop.reference.errors import BackstopError

# importing these runs something (``python -m backstop``), so they are not walked
SKIP = {"backstop.__main__"}


# the code packages of the installed layout (pyproject.toml package-dir; an editable install maps
# each to its own folder, so each is walked from its own __path__)
PACKAGES = ("backstop", "backstop.reference", "backstop.proofs", "backstop.proofs.derivations")


def _modules() -> list[str]:
    names = set(PACKAGES)
    for pkg in PACKAGES:
        for info in pkgutil.walk_packages(importlib.import_module(pkg).__path__, pkg + "."):
            if info.name not in SKIP:
                names.add(info.name)
    return sorted(names)


def _exception_classes() -> dict[str, type]:
    found = {}
    for name in _modules():
        mod = importlib.import_module(name)
        for attr, obj in vars(mod).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == name:
                found[f"{name}.{attr}"] = obj
    return found


def test_the_walk_sees_the_three_packages_and_the_errors_named_in_the_issue():
    mods = _modules()
    # the three packages of the installed layout, and modules of each (by hand from pyproject's package-dir)
    assert {"backstop.cli", "backstop.reference.errors", "backstop.proofs.registry", "backstop.proofs.concolic",
            "backstop.conform", "backstop.checktrace"} <= set(mods)
    found = _exception_classes()
    # the five that were plain Exceptions before issue 12, and the base's own subclasses
    for cls in ("backstop.conform.VectorError", "backstop.conform.CannotStart", "backstop.checktrace.TraceError",
                "backstop.proofs.concolic.HarnessError", "backstop.proofs.registry.Inconclusive",
                "backstop.reference.errors.InvalidInput", "backstop.reference.errors.ProfileError"):
        assert cls in found, cls


def test_every_exception_class_of_the_package_derives_from_backstop_error():
    strays = sorted(n for n, c in _exception_classes().items() if not issubclass(c, BackstopError))
    assert strays == []


def test_the_errors_keep_their_own_behaviour():
    from backstop.checktrace import TraceError
    from backstop.conform import CannotStart, VectorError
    from backstop.proofs.concolic import HarnessError
    from backstop.proofs.registry import Inconclusive
    from backstop.reference.errors import InvalidInput
    e = TraceError(7, "time_ms: goes back")
    assert (e.line, e.message) == (7, "time_ms: goes back") and "line 7" in str(e)
    for cls in (VectorError, CannotStart, HarnessError, Inconclusive):
        err = cls("why")
        assert str(err) == "why" and isinstance(err, BackstopError)
        assert not isinstance(err, (InvalidInput, ValueError))  # not mistaken for a refused input field
