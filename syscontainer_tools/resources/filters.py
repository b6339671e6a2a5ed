"""``--filter JSON`` of list-nic and list-route: a JSON object of field -> value."""

from __future__ import annotations

from collections.abc import Sequence

from .. import jsonobject
from ..errors import SpecError

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Union

    FilterValue = Union[str, int]  # noqa: UP007 - an alias (Python 3.9)


def parse_filter(text: str | None, fields: Sequence[str]) -> dict[str, FilterValue]:
    """``--filter JSON`` -> {canonical field: value}; empty values are dropped.

    Keys are matched case-insensitively against ``fields``."""
    if not text or not text.strip():
        return {}
    data = jsonobject.parse(
        text, not_json="filter is not valid JSON", error=SpecError,
        not_object="filter must be a JSON object, e.g. '{\"Ip\": \"10.0.0.2/24\"}'")
    by_lower = {f.lower(): f for f in fields}
    out: dict[str, FilterValue] = {}
    for key, value in data.items():
        field = by_lower.get(str(key).lower())
        if field is None:
            raise SpecError(f"filter key {key!r} is not one of {', '.join(fields)}")
        if value in (None, "", 0):
            continue
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise SpecError(f"filter value of {field!r} must be a string or a number")
        out[field] = value
    return out
