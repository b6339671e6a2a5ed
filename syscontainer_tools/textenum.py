"""``TextEnum``: ``enum.StrEnum`` (3.11) for Python 3.9 and 3.10.

Members are ``str`` values; ``str()``, ``format()``/f-strings and ``json``
give the plain value ("veth", not "NicType.VETH"), as with ``StrEnum``.
"""

from __future__ import annotations

from enum import Enum


class TextEnum(str, Enum):
    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return str.__format__(str.__str__(self), spec)
