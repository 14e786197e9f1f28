"""A per-process cache of loaded profiles for ``backstop eval --jsonl`` (issue 14, start-up).

Loading a profile (TOML parse, validation, tier tables) costs far more than answering one
request, so a stream of requests loads each profile once.  Profiles are frozen values, so one
object may answer any number of requests.  The cache is keyed as
:func:`backstop.inputs.evaluate` keys it (the request's ``profile`` value: a shipped name, or the
inline TOML text itself, which is its own content key) and every entry carries a stamp of the
shipped profile files (path, mtime, size of each ``*.toml``; an inline profile may ``extends`` one
of them): when a shipped file changes, the entries loaded before are dropped and the profile is
loaded again.  At most :data:`MAX_ENTRIES` profiles are kept (the oldest go first), so a stream
of distinct inline profiles does not grow memory without bound.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["ProfileCache", "PROCESS_PROFILES", "MAX_ENTRIES", "shipped_stamp"]

MAX_ENTRIES = 64


def shipped_stamp() -> tuple[tuple[str, int, int], ...] | None:
    """(name, mtime in ns, size) of every shipped profile file; None when they cannot be listed
    (a zipped install: its files cannot change while the process runs)."""
    from backstop.reference.profile import _profiles_dir
    try:
        folder = os.fspath(_profiles_dir())
        out = []
        with os.scandir(folder) as it:
            for e in it:
                if e.name.endswith(".toml"):
                    st = e.stat()
                    out.append((e.name, st.st_mtime_ns, st.st_size))
        return tuple(sorted(out))
    except (OSError, TypeError):
        return None


class ProfileCache(dict[Any, Any]):
    """The mapping :func:`backstop.inputs.evaluate` takes as ``profiles``: ``key in cache`` is
    True only for an entry loaded since the shipped files last changed; ``cache[key] = p``
    stores one (dropping the oldest past :data:`MAX_ENTRIES`).  ``loads`` counts the stores, i.e.
    the profiles actually loaded (for the tests)."""

    def __init__(self) -> None:
        super().__init__()
        self._stamps: dict[Any, Any] = {}
        self._stamp: Any = None
        self.loads = 0

    def __contains__(self, key: object) -> bool:
        try:
            present = dict.__contains__(self, key)
        except TypeError:           # an unhashable profile value: never cached (it is refused)
            return False
        self._stamp = shipped_stamp()
        if present and self._stamps.get(key) != self._stamp:
            dict.__delitem__(self, key)
            del self._stamps[key]
            present = False
        return present

    def __setitem__(self, key: Any, profile: Any) -> None:
        while len(self) >= MAX_ENTRIES:
            oldest = next(iter(self))
            dict.__delitem__(self, oldest)
            self._stamps.pop(oldest, None)
        dict.__setitem__(self, key, profile)
        self._stamps[key] = self._stamp if self._stamp is not None else shipped_stamp()
        self.loads += 1

    def clear(self) -> None:
        dict.clear(self)
        self._stamps.clear()


PROCESS_PROFILES = ProfileCache()
