"""JSON text that must be an object: the OCI state, ``--filter``, a settings file."""

from __future__ import annotations

from .errors import ToolError
from .quickjson import loads

TYPE_CHECKING = False  # not typing's: the hook's fast path reads the OCI state here
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any


def parse(text: str, *, not_json: str, not_object: str,
          error: type[ToolError] = ToolError) -> dict[str, Any]:
    """``text`` as a JSON object; else ``error``: ``<not_json>: <json's reason>``
    for text that is no JSON, ``<not_object>`` for JSON of another type (the
    words are the caller's, as its documentation shows them)."""
    try:
        data = loads(text)  # json.loads, without importing json unless the text is bad
    except ValueError as err:
        raise error(f"{not_json}: {err}") from None
    if not isinstance(data, dict):
        raise error(not_object)
    return data
