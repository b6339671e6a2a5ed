"""``loads`` for a hook's fast path: ``json.loads`` without importing json.

``import json`` imports re, and re imports enum: together about a third of
the start-up of a hook that finds nothing to do.  The parsing itself is
CPython's C scanner (``_json.make_scanner``), the one ``json.loads`` calls,
given the same settings.  Anything unusual -- input it does not accept, a
Python without ``_json`` -- goes to ``json.loads`` itself, so errors and
their messages are json's own.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's (see hooks.py)
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

_WHITESPACE = " \t\n\r"  # JSON's
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _Context:
    # what json.JSONDecoder() hands the scanner
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = _CONSTANTS.__getitem__


def loads(data: str | bytes) -> Any:
    """``json.loads(data)``."""
    try:
        from _json import make_scanner

        text = data.decode("utf-8") if isinstance(data, bytes) else data
        text = text.strip(_WHITESPACE)
        obj, end = make_scanner(_Context())(text, 0)  # type: ignore[arg-type]
        if end == len(text) and not text.startswith("\ufeff"):
            return obj
    except Exception:  # noqa: BLE001, S110 - json.loads below says what is wrong
        pass
    import json

    return json.loads(data)
