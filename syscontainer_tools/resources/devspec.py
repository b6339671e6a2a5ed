"""What a device is: add-device's and remove-device's arguments, and the
typed model of one saved device.

``DeviceSpec.parse()`` reads ``HOST[:CTR][:PERM]``, ``DeviceRef.parse()``
``HOST[:CTR]``; ``Device`` is what is saved: the host device's type and
numbers as probed, the permission, the udev rule of a whole disk, and what
the v1 device cgroup granted before (``preallowed``).  ``row()`` is
list-device's view in the original tool's column names.
"""

from __future__ import annotations

import dataclasses
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import SpecError, ToolError
from .devcgroup import PERMS, DevRule, perm_union

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any

COLUMNS = [("PathOnHost", "Host path"), ("PathInContainer", "Container path"),
           ("Major", "Major"), ("Minor", "Minor"), ("CgroupPermissions", "Permissions"),
           ("Type", "Type"), ("Qos", "QoS")]


def _valid_perm(text: str) -> bool:
    return bool(text) and all(c in PERMS for c in text) and len(set(text)) == len(text)


def _perm_error(spec: str, perm: str) -> SpecError:
    if not perm:
        return SpecError(f"device {spec!r}: permission is empty (use r, w and m)")
    bad = next((c for c in perm if c not in PERMS), None)
    if bad is not None:
        return SpecError(f"device {spec!r}: permission {bad!r} is not one of r, w, m")
    return SpecError(f"device {spec!r}: permission {perm!r} repeats a letter")


def _abs_clean(spec: str, which: str, path: str) -> str:
    if not path.startswith("/"):
        raise SpecError(f"device {spec!r}: {which} path {path!r} is not absolute")
    return posixpath.normpath(path).replace("//", "/")


@dataclass(frozen=True)
class DeviceSpec:
    """``HOST[:CTR][:PERM]`` of add-device."""

    host: str
    container: str
    perm: str = "rwm"

    @classmethod
    def parse(cls, text: str) -> DeviceSpec:
        parts = text.split(":")
        if len(parts) > 3:
            raise SpecError(f"device {text!r}: too many ':' (HOST[:CONTAINER][:PERMISSION])")
        host, ctr, perm = parts[0], "", "rwm"
        if len(parts) == 2:
            if _valid_perm(parts[1]):
                perm = parts[1]
            else:
                ctr = parts[1]
                if not ctr.startswith("/") and ctr and all(c.isalpha() for c in ctr):
                    raise _perm_error(text, ctr)
        elif len(parts) == 3:
            ctr, perm = parts[1], parts[2]
            if not _valid_perm(perm):
                raise _perm_error(text, perm)
        if not host:
            raise SpecError(f"device {text!r}: the host path is empty")
        host = _abs_clean(text, "host", host)
        ctr = _abs_clean(text, "container", ctr) if ctr else host
        if ctr == "/":
            raise SpecError(f"device {text!r}: the container path cannot be /")
        return cls(host, ctr, perm)


@dataclass(frozen=True)
class Device:
    """One saved device of a container."""

    host: str
    container: str
    type: str                 # "b" or "c"
    major: int
    minor: int
    perm: str = "rwm"
    mode: int = 0o660
    parent: str = ""          # the whole disk's host path, for a partition
    preallowed: str = ""      # what v1 devices.list granted before it was added
    udev_rule: str = ""       # a whole disk's rule file ...
    udev_text: str = ""       # ... and its text
    unit_base: str = ""       # what the systemd unit's DeviceAllow= granted before it was added

    @property
    def numbers(self) -> tuple[str, int, int]:
        return (self.type, self.major, self.minor)

    def rule(self, perm: str | None = None) -> DevRule:
        return DevRule(self.type, self.major, self.minor, self.perm if perm is None else perm)

    def replace(self, **changes: Any) -> Device:
        return dataclasses.replace(self, **changes)

    def to_record(self) -> dict[str, Any]:
        out: dict[str, Any] = {"host": self.host, "container": self.container,
                               "type": self.type, "major": self.major, "minor": self.minor,
                               "perm": self.perm, "mode": self.mode, "parent": self.parent}
        for key in ("preallowed", "udev_rule", "udev_text", "unit_base"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> Device:
        try:
            return cls(str(data["host"]), str(data["container"]), str(data["type"]),
                       int(data["major"]), int(data["minor"]), str(data.get("perm", "rwm")),
                       int(data.get("mode", 0o660)), str(data.get("parent") or ""),
                       str(data.get("preallowed") or ""), str(data.get("udev_rule") or ""),
                       str(data.get("udev_text") or ""), str(data.get("unit_base") or ""))
        except (KeyError, TypeError, ValueError) as err:
            raise ToolError(f"saved device {dict(data)!r} is malformed: {err}") from None

    def add_line(self, ref: str) -> str:
        return f"Add device ({self.host}) to container({ref},{self.container}) done."

    def remove_line(self, ref: str) -> str:
        return f"Remove device ({self.host}) from container({ref},{self.container}) done."

    def row(self, qos: str) -> dict[str, Any]:
        """list-device's columns (the original tool's JSON names)."""
        return {"PathOnHost": self.host, "PathInContainer": self.container,
                "Major": self.major, "Minor": self.minor, "CgroupPermissions": self.perm,
                "Type": self.type, "Parent": self.parent, "Qos": qos}


@dataclass(frozen=True)
class DeviceRef:
    """``HOST[:CTR]`` (or ``:CTR``) of remove-device."""

    host: str | None
    container: str | None

    @classmethod
    def parse(cls, text: str) -> DeviceRef:
        parts = text.split(":")
        if len(parts) > 3:
            raise SpecError(f"device {text!r}: too many ':' (HOST[:CONTAINER])")
        host = parts[0] or None
        ctr = parts[1] if len(parts) >= 2 and not (len(parts) == 2 and _valid_perm(parts[1])) \
            else None
        if len(parts) == 3 and parts[2] and not _valid_perm(parts[2]):
            raise _perm_error(text, parts[2])
        ctr = ctr or None
        if host is None and ctr is None:
            raise SpecError(f"device {text!r}: give the host path, the container path, or both")
        return cls(_abs_clean(text, "host", host) if host else None,
                   _abs_clean(text, "container", ctr) if ctr else None)

    def matches(self, device: Device) -> bool:
        return (self.host is None or device.host == self.host) and \
            (self.container is None or device.container == self.container)

    def __str__(self) -> str:
        return ":".join(p for p in (self.host, self.container) if p) if self.host \
            else f":{self.container}"


def others_perm(devices: Sequence[Device], device: Device) -> str:
    """Permissions other saved entries (or the runtime) still grant this device."""
    keep = device.preallowed
    for other in devices:
        if other is not device and other.numbers == device.numbers:
            keep = perm_union(keep, other.perm)
    return keep
