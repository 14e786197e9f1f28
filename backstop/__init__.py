"""backstop: exchange liquidation, insurance-fund and ADL rules -- spec, reference, proofs."""

import os as _os
import sys as _sys

__version__ = "0.1.0"


def _bytecode_prefix(package_dir: str, environ: "_os._Environ[str] | dict[str, str]" = _os.environ) -> "str | None":
    """Where Python should cache this package's bytecode, or None to leave it beside the sources.

    Python writes ``__pycache__/*.pyc`` beside each module; in a read-only checkout or install it
    cannot, and every start compiles every module again (tens of ms).  Then the cache goes to
    ``$XDG_CACHE_HOME/backstop/pycache`` (default ``~/.cache/backstop/pycache``) -- unless the
    user chose already (``PYTHONPYCACHEPREFIX`` / ``-X pycache_prefix``, or no bytecode at all with
    ``PYTHONDONTWRITEBYTECODE``), or compiled bytecode is already in place beside the sources (an
    install that byte-compiled itself), which Python would no longer read under a prefix."""
    if _sys.pycache_prefix is not None or _sys.dont_write_bytecode:
        return None
    cache = _os.path.join(package_dir, "__pycache__")
    if _os.access(cache if _os.path.isdir(cache) else package_dir, _os.W_OK):
        return None
    tag = _sys.implementation.cache_tag
    try:
        pyc = _os.path.join(cache, f"cli.{tag}.pyc")
        if tag and _os.stat(pyc).st_mtime >= _os.stat(_os.path.join(package_dir, "cli.py")).st_mtime:
            return None
    except OSError:
        pass
    base = environ.get("XDG_CACHE_HOME", "")
    if not _os.path.isabs(base):   # unset, or relative (the XDG base directory spec says: ignore it)
        base = _os.path.join(_os.path.expanduser("~"), ".cache")
    if not _os.path.isabs(base):   # no home directory either: leave Python's default
        return None
    return _os.path.join(base, "backstop", "pycache")


def _use_bytecode_prefix() -> None:
    prefix = _bytecode_prefix(_os.path.dirname(_os.path.abspath(__file__)))
    if prefix is not None:
        _sys.pycache_prefix = prefix


_use_bytecode_prefix()
