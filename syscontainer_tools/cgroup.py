"""A container's cgroup directories, v1 controllers and the v2 unified tree.

Paths come from /proc/PID/cgroup of the container's init, joined to where the
host mounts each hierarchy (read from /proc/self/mountinfo, not assumed).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

from . import mountinfo
from .errors import ToolError
from .log import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Mounts:
    v1: dict[str, str] = field(default_factory=dict)   # controller -> mount point
    v2: str | None = None


def parse_mountinfo(text: str) -> Mounts:
    v1, v2 = mountinfo.cgroup_hierarchies(mountinfo.parse(text))
    return Mounts(v1, v2)


@functools.cache
def host_mounts() -> Mounts:
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        return parse_mountinfo(f.read())


@dataclass(frozen=True)
class CgroupSet:
    """Host directories of one process's cgroups."""

    v1: dict[str, str]          # controller -> directory
    v2: str | None              # unified directory

    def v2_has(self, controller: str) -> bool:
        if not self.v2:
            return False
        try:
            with open(os.path.join(self.v2, "cgroup.controllers"), encoding="ascii") as f:
                return controller in f.read().split()
        except OSError:
            return False

    def dir(self, v1_controller: str, v2_controller: str | None = None) -> tuple[int, str]:
        """(version, directory) serving a controller: v1 first, else v2."""
        if v1_controller in self.v1:
            return 1, self.v1[v1_controller]
        name = v2_controller or v1_controller
        if self.v2 and self.v2_has(name):
            return 2, self.v2
        raise ToolError(f"no {v1_controller} cgroup (v1) or {name} controller (v2) "
                        "for the container")


@dataclass(frozen=True)
class Membership:
    """The cgroup paths of one process (/proc/PID/cgroup), per v1 controller
    and in the v2 tree, as the kernel names them (relative to each
    hierarchy's root, starting with /)."""

    v1: dict[str, str] = field(default_factory=dict)
    v2: str | None = None


def parse_membership(text: str) -> Membership:
    """The one parser of /proc/PID/cgroup ("ID:controllers:path" per line)
    for the whole project (lxcfs_toolkit's views use it too)."""
    v1: dict[str, str] = {}
    v2: str | None = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if path.endswith(" (deleted)"):
            path = path[: -len(" (deleted)")]
        if controllers == "":
            v2 = path
            continue
        for ctl in controllers.split(","):
            v1[ctl] = path
    return Membership(v1, v2)


def parse_proc_cgroup(text: str, mounts: Mounts) -> CgroupSet:
    """/proc/PID/cgroup joined to where the host mounts each hierarchy."""
    member = parse_membership(text)
    v1 = {ctl: os.path.join(mounts.v1[ctl], path.lstrip("/"))
          for ctl, path in member.v1.items() if ctl in mounts.v1}
    v2 = os.path.join(mounts.v2, member.v2.lstrip("/")) \
        if mounts.v2 and member.v2 is not None else None
    return CgroupSet(v1, v2)


def for_pid(pid: int) -> CgroupSet:
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as f:
            text = f.read()
    except OSError as err:
        raise ToolError(f"cannot read the cgroups of pid {pid}: {err.strerror}") from None
    return parse_proc_cgroup(text, host_mounts())


def write(directory: str, name: str, value: str) -> None:
    """Write one line to a cgroup file; the kernel's errno becomes a clear error."""
    path = os.path.join(directory, name)
    log.debug("cgroup %s <- %s", path, value)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except OSError as err:
        raise ToolError(f"cannot open {path}: {err.strerror}") from None
    try:
        os.write(fd, value.encode())
    except OSError as err:
        raise ToolError(f"writing {value!r} to {path}: {err.strerror}") from None
    finally:
        os.close(fd)


def read(directory: str, name: str) -> str:
    path = os.path.join(directory, name)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as err:
        raise ToolError(f"cannot read {path}: {err.strerror}") from None
