"""/proc/PID/mountinfo, parsed once for everyone (proc(5)).

Used for the cgroup hierarchies (syscontainer-tools and the lxcfs daemon),
for lxcfs mounts inside containers, and for checks in tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

V1_CONTROLLERS = frozenset(
    {"cpu", "cpuacct", "cpuset", "memory", "blkio", "pids", "devices", "freezer",
     "net_cls", "net_prio", "perf_event", "hugetlb", "rdma", "misc"}
)


@dataclass(frozen=True)
class MountEntry:
    """One line of /proc/PID/mountinfo."""

    mount_id: int
    parent_id: int
    dev: int          # os.makedev(major, minor), comparable with st_dev
    root: str         # path inside the filesystem that is mounted ("/proc/meminfo")
    point: str        # mount point, relative to the reading process's root
    options: str
    optional: tuple[str, ...]   # "shared:N", "master:N", ...
    fstype: str
    source: str
    super_options: str = ""

    @property
    def shared(self) -> bool:
        return any(tag.startswith("shared:") for tag in self.optional)


def unescape(text: str) -> str:
    """mountinfo writes space, tab, newline and backslash as \\ooo."""
    if "\\" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        code = text[i + 1:i + 4]
        if text[i] == "\\" and len(code) == 3 and all(c in "01234567" for c in code):
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def parse(text: str) -> list[MountEntry]:
    """Parse mountinfo text; malformed lines are skipped."""
    entries = []
    for line in text.splitlines():
        pre, sep, post = line.partition(" - ")
        fields, tail = pre.split(), post.split()
        if not sep or len(fields) < 6 or len(tail) < 2:
            continue
        try:
            major, minor = (int(x) for x in fields[2].split(":"))
            entries.append(MountEntry(
                mount_id=int(fields[0]), parent_id=int(fields[1]),
                dev=os.makedev(major, minor), root=unescape(fields[3]),
                point=unescape(fields[4]), options=fields[5], optional=tuple(fields[6:]),
                fstype=tail[0], source=unescape(tail[1]),
                super_options=tail[2] if len(tail) > 2 else ""))
        except ValueError:
            continue
    return entries


def read(pid: int | str = "self") -> list[MountEntry]:
    with open(f"/proc/{pid}/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        return parse(f.read())


def top_mount(entries: Iterable[MountEntry], point: str) -> MountEntry | None:
    """The mount on top at ``point`` (the last one listed there)."""
    found = None
    for entry in entries:
        if entry.point == point:
            found = entry
    return found


def cgroup_hierarchies(entries: Iterable[MountEntry]) -> tuple[dict[str, str], str | None]:
    """({v1 controller or name=X: mount point}, v2 mount point) of whole
    hierarchies (a bind of a sub-tree would not line up with /proc/PID/cgroup).
    A mount covered by a later one (on the same point or above it) is not
    what the path shows: e.g. a cgroup2 at /sys/fs/cgroup with a tmpfs of v1
    hierarchies mounted over it and the visible cgroup2 at .../unified."""
    visible: list[MountEntry] = []     # whole cgroup hierarchies nothing covers yet
    for e in entries:
        if visible:
            under = e.point.rstrip("/") + "/"
            visible = [v for v in visible
                       if v.point != e.point and not v.point.startswith(under)]
        if e.root == "/" and e.fstype in ("cgroup", "cgroup2"):
            visible.append(e)
    v1: dict[str, str] = {}
    v2: str | None = None
    for e in visible:
        if e.fstype == "cgroup2" and v2 is None:
            v2 = e.point
        elif e.fstype == "cgroup":
            for opt in e.super_options.split(","):
                if opt in V1_CONTROLLERS or opt.startswith("name="):
                    v1.setdefault(opt, e.point)
    return v1, v2
