"""Block I/O limits of a container: throttles and weights per device.

cgroup v1 writes ``MAJ:MIN VALUE`` to ``blkio.throttle.{read,write}_{bps,iops}_device``
and ``blkio.weight_device`` (or ``blkio.bfq.weight_device`` on kernels
without CFQ); 0 removes a limit.  cgroup v2 writes ``MAJ:MIN rbps=N`` (``max``
removes) to ``io.max`` and ``MAJ:MIN W`` (``default`` removes) to ``io.weight``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from .. import cgroup
from ..errors import SpecError, ToolError
from .blockdev import HostDevice

TYPE_CHECKING = False  # not typing's: importing typing costs every command's start-up
if TYPE_CHECKING:  # pragma: no cover
    from typing import Any


class QosKind(Enum):
    # value, message words, v1 file, v2 io.max key; order = the order applied
    READ_IOPS = ("read_iops", "read iops", "blkio.throttle.read_iops_device", "riops")
    WRITE_IOPS = ("write_iops", "write iops", "blkio.throttle.write_iops_device", "wiops")
    READ_BPS = ("read_bps", "read bps", "blkio.throttle.read_bps_device", "rbps")
    WRITE_BPS = ("write_bps", "write bps", "blkio.throttle.write_bps_device", "wbps")
    WEIGHT = ("weight", "blkio weight", "blkio.weight_device", "")

    def __init__(self, key: str, words: str, v1_file: str, v2_key: str):
        self.key = key
        self.words = words
        self.v1_file = v1_file
        self.v2_key = v2_key

    @classmethod
    def from_key(cls, key: str) -> QosKind:
        for kind in cls:
            if kind.key == key:
                return kind
        raise ToolError(f"unknown QoS kind {key!r} in saved state")

    @property
    def option(self) -> str:
        return "--blkio-weight-device" if self is QosKind.WEIGHT else \
            "--device-" + self.key.replace("_", "-")


_RATE = re.compile(r"^(\d+(?:\.\d+)?)([kKmMgGtTpP])?[bB]?$")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_rate(text: str) -> int:
    """``10m`` -> 10485760 (1024-based k/m/g/t/p, optional b/B)."""
    m = _RATE.match(text.strip())
    if not m:
        raise ValueError(text)
    number, unit = m.group(1), (m.group(2) or "").lower()
    if "." in number:
        return int(float(number) * _UNITS[unit])
    return int(number) * _UNITS[unit]


@dataclass(frozen=True)
class QosSpec:
    kind: QosKind
    path: str
    value: int
    major: int
    minor: int

    @classmethod
    def parse(cls, kind: QosKind, text: str) -> QosSpec:
        """``DEV:VALUE``; DEV must be a whole block device (not a partition)."""
        dev, sep, raw = text.rpartition(":")
        if not sep or not dev or not raw:
            raise SpecError(f"{kind.option} {text!r}: expected DEVICE:VALUE")
        if not dev.startswith("/"):
            raise SpecError(f"{kind.option} {text!r}: device path {dev!r} is not absolute")
        if kind is QosKind.WEIGHT:
            if not raw.isdigit():
                raise SpecError(f"{kind.option} {text!r}: weight {raw!r} is not a number")
            value = int(raw)
            if value and not 10 <= value <= 1000:
                raise SpecError(f"{kind.option} {text!r}: weight must be 0 or 10 to 1000")
        else:
            try:
                value = parse_rate(raw)
            except ValueError:
                unit = "bytes per second" if kind.key.endswith("bps") else "IO per second"
                raise SpecError(f"{kind.option} {text!r}: invalid rate {raw!r} ({unit}: a number "
                                "with an optional k, m, g, t or p suffix)") from None
        path = os.path.normpath(dev)
        host = HostDevice.probe(path, text)
        if host.kind != "b":
            raise SpecError(f"{kind.option} {text!r}: {path} is a char device; QoS needs a "
                            "block device")
        info = host.block
        if info is not None and info.partition:
            raise SpecError(f"{kind.option} {text!r}: {path} is a partition; QoS applies to "
                            "whole disks only")
        return cls(kind, path, value, host.major, host.minor)

    @property
    def numbers(self) -> tuple[int, int]:
        return (self.major, self.minor)

    def to_record(self) -> dict[str, Any]:
        return {"kind": self.kind.key, "host": self.path, "major": self.major,
                "minor": self.minor, "value": self.value}

    @classmethod
    def from_record(cls, data: Mapping[str, Any]) -> QosSpec:
        try:
            return cls(QosKind.from_key(str(data["kind"])), str(data["host"]),
                       int(data["value"]), int(data["major"]), int(data["minor"]))
        except (KeyError, TypeError, ValueError) as err:
            raise ToolError(f"saved QoS limit {dict(data)!r} is malformed: {err}") from None

    def replace(self, **changes: Any) -> QosSpec:
        return dataclasses.replace(self, **changes)


def update_line(kind: QosKind, path: str, value: int) -> str:
    return f"Update {kind.words} for device ({path},{value}) done."


def remove_line(kind: QosKind, path: str) -> str:
    return f"Remove {kind.words} for device ({path}) done."


@dataclass(frozen=True)
class BlkioCgroup:
    """Where a container's limits are written: the ``blkio`` (v1) or ``io``
    (v2) directory of its init's cgroup."""

    version: int     # 1 or 2
    directory: str

    @classmethod
    def for_pid(cls, pid: int) -> BlkioCgroup:
        version, directory = cgroup.for_pid(pid).dir("blkio", "io")
        return cls(version, directory)

    def apply(self, kind: QosKind, major: int, minor: int, value: int, path: str) -> None:
        """Set one limit; ``value`` 0 removes it."""
        dev = f"{major}:{minor}"
        if self.version == 1:
            if kind is QosKind.WEIGHT:
                self._v1_weight(dev, value, path)
            else:
                cgroup.write(self.directory, kind.v1_file, f"{dev} {value}")
            return
        if kind is QosKind.WEIGHT:
            self._v2_weight(dev, value, path)
        else:
            cgroup.write(self.directory, "io.max",
                         f"{dev} {kind.v2_key}={value if value else 'max'}")

    def _v1_weight(self, dev: str, value: int, path: str) -> None:
        for name in ("blkio.weight_device", "blkio.bfq.weight_device"):
            if os.path.exists(os.path.join(self.directory, name)):
                break
        else:
            raise ToolError(f"cannot set the blkio weight of {path}: this kernel has no per-device "
                            "weights (blkio.weight_device needs the CFQ or BFQ I/O scheduler)",
                            hint="check that the OS supports BFQ block device weights")
        # CFQ's file takes 0 to drop a device's weight; BFQ's refuses 0 (ERANGE)
        # and takes "default" instead
        unset = "default" if name == "blkio.bfq.weight_device" else "0"
        try:
            cgroup.write(self.directory, name, f"{dev} {value if value else unset}")
        except ToolError as err:
            raise _weight_error(path, err) from None

    def _v2_weight(self, dev: str, value: int, path: str) -> None:
        # io.weight exists whenever the io controller is on (it is blk-iocost's,
        # inert unless iocost is enabled on the disk); BFQ reads io.bfq.weight
        bfq = os.path.exists(os.path.join(self.directory, "io.bfq.weight"))
        if bfq and (scheduler(path) == "bfq"
                    or not os.path.exists(os.path.join(self.directory, "io.weight"))):
            name = "io.bfq.weight"
        else:
            name = "io.weight"
        try:
            cgroup.write(self.directory, name, f"{dev} {value if value else 'default'}")
        except ToolError as err:
            if name == "io.bfq.weight":
                raise _weight_error(path, err) from None
            # io.weight takes a device's weight only where blk-iocost is
            # enabled for that disk (EOPNOTSUPP otherwise)
            block = os.path.basename(os.path.realpath(path))
            root = cgroup.host_mounts().v2 or "/sys/fs/cgroup"
            raise ToolError(
                f"cannot set the blkio weight of {path} ({err.message}); on cgroup v2 device "
                f"weights need the BFQ I/O scheduler on the disk ({path} uses "
                f"{scheduler(path) or 'unknown'}) or blk-iocost enabled for it (io.cost.qos)",
                hint=f"echo bfq > /sys/block/{block}/queue/scheduler, or "
                     f"echo '{dev} enable=1' > {root}/io.cost.qos") from None


def _weight_error(path: str, err: ToolError) -> ToolError:
    sched = scheduler(path)
    return ToolError(f"cannot set the blkio weight of {path} ({err.message}); device weights "
                     f"need the BFQ (or CFQ) I/O scheduler, {path} uses {sched or 'unknown'}",
                     hint=f"check that the OS supports BFQ block device weights, e.g. "
                          f"echo bfq > /sys/block/{os.path.basename(os.path.realpath(path))}"
                          "/queue/scheduler")


def scheduler(path: str) -> str | None:
    name = os.path.basename(os.path.realpath(path))
    try:
        with open(f"/sys/block/{name}/queue/scheduler", encoding="ascii") as f:
            text = f.read()
    except OSError:
        return None
    m = re.search(r"\[(\S+)\]", text)
    return m.group(1) if m else text.strip()
