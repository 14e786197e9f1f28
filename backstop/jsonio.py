"""Exact JSON input and output.

JSON has one number type, and most parsers read ``0.1`` as a binary float that is not one tenth.
backstop therefore writes every number as a JSON *string* holding its exact value (``"12"``,
``"29984.93"``, ``"1/3"`` when the decimal expansion would not end), and reads numbers from JSON
strings (``"0.005"``, ``"1/3"``, ``"12"``) or JSON integers.  A JSON float (``0.005``, ``1e3``,
``NaN``, ``Infinity``) is refused with an error naming the field, never rounded.

:func:`loads` parses a document keeping every float literal as a :class:`JsonFloat` marker (and
refusing duplicate keys), so that the refusal can happen where the field is known.
"""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

from backstop.reference.types import format_exact  # not from proofs/: the eval path never imports z3
from backstop.reference.errors import InvalidInput
from backstop.reference.read import FloatLiteral

__all__ = ["JsonFloat", "loads", "dumps", "dump_number", "to_json"]


class JsonFloat(FloatLiteral):
    """A JSON float literal (also ``NaN``/``Infinity``), kept as its text so that the input layer
    (:mod:`backstop.reference.read`) refuses it by field, in JSON's words."""

    __slots__ = ()
    syntax = "JSON"


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise InvalidInput(k, v, "key given twice in one JSON object")
        out[k] = v
    return out


def loads(text: str, source: str = "request") -> Any:
    """Parse JSON text; float literals become :class:`JsonFloat`, duplicate keys are refused."""
    try:
        return json.loads(text, parse_float=JsonFloat, parse_constant=JsonFloat, object_pairs_hook=_pairs)
    except json.JSONDecodeError as e:
        near = e.doc[max(0, e.pos - 20):e.pos + 20]
        raise InvalidInput(source, near, f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise InvalidInput(source, text[:20], "nested too deeply to read (the input bound, README \"Input bounds\")") from None
    except ValueError:  # an integer literal beyond Python's int-string limit (sys.int_info.default_max_str_digits)
        raise InvalidInput(source, text[:20], "an integer with more digits than can be read "
                           "(the input bound, README \"Input bounds\")") from None


def dump_number(v: Any) -> Any:
    """The JSON value of an exact quantity: numbers as exact strings (``"12"``, ``"29984.93"``,
    ``"1/3"`` when the denominator has a prime factor other than 2 and 5), bools as
    ``true``/``false``, ``None`` as ``null``."""
    if v is None or isinstance(v, bool):
        return v
    if isinstance(v, (int, Fraction)):
        return format_exact(v)
    raise TypeError(f"not an exact number: {v!r} ({type(v).__name__})")


def to_json(obj: Any) -> Any:
    """Recursively replace exact numbers by their :func:`dump_number` strings (floats, such as
    proof times, are left as they are)."""
    if obj is None or isinstance(obj, (bool, str, float)):
        return obj
    if isinstance(obj, (int, Fraction)):
        return dump_number(obj)
    if isinstance(obj, dict):
        return {str(k): to_json(x) for k, x in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(x) for x in obj]
    return str(obj)


def dumps(obj: Any) -> str:
    """Pretty JSON text (two-space indent, keys in the given order, trailing newline)."""
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
