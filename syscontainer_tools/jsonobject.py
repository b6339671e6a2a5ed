"""JSON text that must be an object: the OCI state, ``--filter``, a settings file."""

from __future__ import annotations

import json
from typing import Any

from .errors import ToolError


def parse(text: str, *, not_json: str, not_object: str,
          error: type[ToolError] = ToolError) -> dict[str, Any]:
    """``text`` as a JSON object; else ``error``: ``<not_json>: <json's reason>``
    for text that is no JSON, ``<not_object>`` for JSON of another type (the
    words are the caller's, as its documentation shows them)."""
    try:
        data = json.loads(text)
    except ValueError as err:
        raise error(f"{not_json}: {err}") from None
    if not isinstance(data, dict):
        raise error(not_object)
    return data
