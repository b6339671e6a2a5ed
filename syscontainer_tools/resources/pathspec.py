"""What a bind-mounted path is: ``HOST:CTR[:OPTS]`` and its saved form.

OPTS is a comma list of ``ro``/``rw`` and one propagation of ``private``,
``rprivate``, ``slave``, ``rslave`` (default ``rw,rslave``).  The saved form
is ``{"host_path", "container_path", "options"}`` with the options in their
canonical order (access, then propagation); ``row()`` is list-path's view.
"""

from __future__ import annotations

import enum
import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from .. import mounts, syscalls
from ..errors import SpecError, ToolError

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

COLUMNS = [("HostPath", "Host path"), ("ContainerPath", "Container path"),
           ("Options", "Options")]


class Propagation(enum.Enum):
    PRIVATE = "private"
    RPRIVATE = "rprivate"
    SLAVE = "slave"
    RSLAVE = "rslave"

    @property
    def flag(self) -> int:
        return syscalls.MS_PRIVATE if self.value.endswith("private") else syscalls.MS_SLAVE

    @property
    def recursive(self) -> bool:
        return self.value.startswith("r")


_ACCESS = ("ro", "rw")
_ALLOWED = (*_ACCESS, *(p.value for p in Propagation))


def _clean(path: str) -> str:
    return posixpath.normpath("/" + path.lstrip("/"))


@dataclass(frozen=True)
class PathSpec:
    host_path: str
    container_path: str
    readonly: bool = False
    propagation: Propagation = Propagation.RSLAVE

    @classmethod
    def parse(cls, text: str) -> PathSpec:
        """Parse ``HOST:CTR[:OPTS]``; raise SpecError naming the bad part."""
        where = f"path {text!r}"
        parts = text.split(":")
        if len(parts) not in (2, 3):
            raise SpecError(f"{where}: expected HOSTPATH:CONTAINERPATH[:OPTIONS]")
        host, ctr = parts[0], parts[1]
        for name, value in (("host", host), ("container", ctr)):
            if not value:
                raise SpecError(f"{where}: {name} path is empty")
            if not value.startswith("/"):
                raise SpecError(f"{where}: {name} path {value!r} is not absolute")
        host, ctr = _clean(host), _clean(ctr)
        if ctr == "/":
            raise SpecError(f"{where}: the container's root / cannot be a target")
        readonly, propagation = False, Propagation.RSLAVE
        if len(parts) == 3:
            readonly, propagation = _parse_options(where, parts[2])
        return cls(host, ctr, readonly, propagation)

    @property
    def options(self) -> str:
        return f"{'ro' if self.readonly else 'rw'},{self.propagation.value}"

    def to_record(self) -> dict[str, Any]:
        return {"host_path": self.host_path, "container_path": self.container_path,
                "options": self.options}

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> PathSpec:
        try:
            return cls.parse(f"{data['host_path']}:{data['container_path']}:{data['options']}")
        except (KeyError, TypeError):
            raise ToolError(f"saved path entry {dict(data)!r} lacks a field") from None

    def row(self) -> dict[str, Any]:
        """list-path's columns, keyed like the other list commands' JSON."""
        return {"HostPath": self.host_path, "ContainerPath": self.container_path,
                "Options": self.options}

    def added_line(self, ref: str) -> str:
        return f"Add path ({self.host_path}) to container({ref},{self.container_path}) done."

    def removed_line(self, ref: str) -> str:
        return (f"Remove path ({self.host_path}) from container({ref},"
                f"{self.container_path}) done")

    @property
    def bind(self) -> mounts.Bind:
        return mounts.Bind(self.host_path, self.container_path, self.readonly,
                           self.propagation.flag, self.propagation.recursive)

    def same_pair(self, other: PathSpec) -> bool:
        return (self.host_path, self.container_path) == (other.host_path, other.container_path)


def _parse_options(where: str, text: str) -> tuple[bool, Propagation]:
    seen: list[str] = []
    for opt in text.split(","):
        if opt not in _ALLOWED:
            raise SpecError(f"{where}: option {opt!r} is not one of {', '.join(_ALLOWED)}")
        if opt in seen:
            raise SpecError(f"{where}: option {opt!r} is given twice")
        seen.append(opt)
    access = [o for o in seen if o in _ACCESS]
    props = [o for o in seen if o not in _ACCESS]
    if len(access) > 1:
        raise SpecError(f"{where}: 'ro' and 'rw' exclude each other")
    if len(props) > 1:
        raise SpecError(f"{where}: only one propagation may be given, not {', '.join(props)}")
    return (access == ["ro"], Propagation(props[0]) if props else Propagation.RSLAVE)


def parse_all(texts: Iterable[str]) -> list[PathSpec]:
    return [PathSpec.parse(t) for t in texts]
