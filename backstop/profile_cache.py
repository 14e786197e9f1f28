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

One ``backstop eval FILE`` is one process: there :class:`DiskProfiles` keeps the loaded shipped
profiles between processes, pickled in ``$XDG_CACHE_HOME/backstop/profiles`` (default
``~/.cache/backstop/profiles``, beside the bytecode cache of a read-only install), so that a
start-up neither imports tomllib nor reads and validates the TOML again (spec C73).  An entry is
used only while everything it was made from is unchanged: the shipped profile files and every
module of ``backstop.reference`` (path, mtime, size -- the check Python makes of its bytecode),
the package version and the Python version; otherwise the profile is loaded as always and the
entry written again.  A cache that cannot be read or written is no cache: the profile is loaded;
an entry is unpickled only when it is the user's own and no one else may write it.
``BACKSTOP_PROFILE_CACHE=0`` turns it off.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["ProfileCache", "PROCESS_PROFILES", "MAX_ENTRIES", "shipped_stamp", "DiskProfiles", "disk_cache_dir",
           "code_stamp"]

MAX_ENTRIES = 64


def shipped_stamp() -> tuple[tuple[str, int, int], ...] | None:
    """(name, mtime in ns, size) of every shipped profile file; None when they cannot be listed
    (a zipped install: its files cannot change while the process runs)."""
    from backstop.reference.profile import _profiles_folder
    folder = _profiles_folder()
    if folder is None:
        return None
    try:
        out = []
        with os.scandir(folder) as it:
            for e in it:
                if e.name.endswith(".toml"):
                    st = e.stat()
                    out.append((e.name, st.st_mtime_ns, st.st_size))
        return tuple(sorted(out))
    except OSError:
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


# ---------------------------------------------------------------- between processes (one eval each)

DISK_FORMAT = 1  # the layout of an entry: (DISK_FORMAT, key, stamp, profile)


def disk_cache_dir(environ: "os._Environ[str] | dict[str, str]" = os.environ) -> str | None:
    """``$XDG_CACHE_HOME/backstop/profiles`` (``~/.cache/backstop/profiles``; a relative
    XDG_CACHE_HOME is ignored, as the XDG base directory spec says), or None: turned off with
    ``BACKSTOP_PROFILE_CACHE=0``, or no home directory."""
    if environ.get("BACKSTOP_PROFILE_CACHE", "") == "0":
        return None
    base = environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):
        return None
    return os.path.join(base, "backstop", "profiles")


def code_stamp() -> tuple[Any, ...]:
    """What a loaded profile depends on besides its files: (name, mtime in ns, size) of every
    module of ``backstop.reference`` (the types, the reader, the checks), the package version and
    the Python version.  Empty when the modules cannot be listed (then nothing is cached)."""
    import backstop
    from backstop import reference
    folder = os.path.dirname(os.path.abspath(reference.__file__))
    try:
        with os.scandir(folder) as it:
            mods = sorted((e.name, st.st_mtime_ns, st.st_size) for e in it if e.name.endswith(".py")
                          for st in (e.stat(),))
    except OSError:
        return ()
    return (backstop.__version__, sys.version, tuple(mods))


def _install_tag() -> str:
    """Names the install (the folder of ``backstop.reference``, by device and inode), so that two
    installs (a checkout and a wheel, two venvs) keep separate entries instead of replacing each
    other's at every start."""
    from backstop import reference
    try:
        st = os.stat(os.path.dirname(os.path.abspath(reference.__file__)))
    except OSError:
        return "0"
    return f"{st.st_dev:x}-{st.st_ino:x}"


def _file_name(key: Any) -> str | None:
    """The entry's file for a request's ``profile`` value: a shipped name (letters, digits, ``-``,
    ``_``) or None (the default profile); an inline profile (a tuple key) is not kept on disk."""
    if key is None:
        return f"(default).{_install_tag()}.pickle"
    if isinstance(key, str) and 0 < len(key) <= 64 and key.isascii() and key.replace("-", "").replace("_", "").isalnum():
        return f"{key}.{_install_tag()}.pickle"
    return None


def _unpickle(data: bytes) -> Any:
    try:                      # the C unpickler alone: pickle.py costs a few ms to import
        from _pickle import loads
    except ImportError:       # pragma: no cover  (an interpreter without it)
        from pickle import loads
    return loads(data)


def _private(st: os.stat_result) -> bool:
    """An entry is unpickled only when it is the user's own and no one else may write it (a pickle
    runs code: an entry planted in a shared XDG_CACHE_HOME is not read)."""
    getuid = getattr(os, "getuid", None)
    return (getuid is None or st.st_uid == getuid()) and not st.st_mode & 0o022


class DiskProfiles(dict[Any, Any]):
    """The ``profiles`` mapping of one ``backstop eval FILE``: ``key in cache`` looks for a valid
    entry on disk (and holds it); ``cache[key] = p`` writes one.  ``hits`` and ``writes`` count
    them (for the tests)."""

    def __init__(self, folder: str | None = None) -> None:
        super().__init__()
        self.folder = disk_cache_dir() if folder is None else folder
        self.hits = self.writes = 0
        self._stamp: Any = None

    def _entry(self, key: Any) -> str | None:
        name = _file_name(key)
        return None if name is None or not self.folder else os.path.join(self.folder, name)

    def stamp(self) -> Any:
        if self._stamp is None:
            shipped, code = shipped_stamp(), code_stamp()
            self._stamp = (shipped, code) if shipped is not None and code else ()
        return self._stamp

    def __contains__(self, key: object) -> bool:
        try:
            if dict.__contains__(self, key):
                return True
        except TypeError:          # an unhashable profile value: refused by the reader
            return False
        path = self._entry(key)
        if path is None or not self.stamp():
            return False
        try:
            with open(path, "rb") as fh:
                if not _private(os.fstat(fh.fileno())):
                    return False
                fmt, k, stamp, profile = _unpickle(fh.read())
        except Exception:          # absent, unreadable, truncated, from another version: no entry
            return False
        if (fmt, k, stamp) != (DISK_FORMAT, key, self.stamp()):
            return False
        dict.__setitem__(self, key, profile)
        self.hits += 1
        return True

    def __setitem__(self, key: Any, profile: Any) -> None:
        dict.__setitem__(self, key, profile)
        path = self._entry(key)
        if path is None or not self.stamp():
            return
        import pickle
        tmp = f"{path}.{os.getpid()}.tmp"
        try:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as fh:
                fh.write(pickle.dumps((DISK_FORMAT, key, self.stamp(), profile), protocol=pickle.HIGHEST_PROTOCOL))
            os.replace(tmp, path)  # whole or not at all: a concurrent reader never sees half an entry
            self.writes += 1
        except Exception:          # a cache that cannot be written is no cache; the answer is the same
            try:
                os.unlink(tmp)
            except OSError:
                pass
