"""Read a process's cgroup limits and usage, from cgroup v1 or v2.

Two inputs decide everything here, and both are parameters so tests can
point them at a temp-dir tree:

* :class:`Hierarchies` -- where each v1 controller and the v2 unified tree
  are mounted (``Hierarchies.discover()`` parses /proc/self/mountinfo);
* ``syscontainer_tools.cgroup.Membership`` -- which cgroup a process is in,
  per controller (``pruned_membership()`` of /proc/PID/cgroup text).

A v1 controller mounted on its own hierarchy wins over v2; any other
controller is looked up in the unified tree. A trailing ``/init.scope`` is
dropped (systemd puts a container's init there). A cgroup that is the
hierarchy's root means "host": the readers return None and the views show
the host's own file.

Readers never raise for a missing or malformed file: a value that cannot be
read is treated as absent (no limit, zero usage). They raise
:class:`CgroupGone` when the cgroup directory itself has disappeared, which
the FUSE layer turns into EIO.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from lxcfs_toolkit import kernfile
from lxcfs_toolkit.kernfile import read_text
from lxcfs_toolkit.views.inputs import CpuSet, CpuUsage, DiskCounters, IoStats, Memory
from syscontainer_tools import mountinfo
from syscontainer_tools.cgroup import Membership, parse_membership
from syscontainer_tools.mountinfo import V1_CONTROLLERS

log = logging.getLogger(__name__)

# v1 reports "no limit" as PAGE_COUNTER_MAX pages (9223372036854771712 on
# x86-64); anything this large is no limit at all.
UNLIMITED = 1 << 62
INIT_SCOPE = "/init.scope"
MAX_TASK_DIRS = 4096


class CgroupGone(Exception):
    """The cgroup directory a reader was looking at no longer exists."""


@dataclass(frozen=True)
class Hierarchies:
    """Mount points: ``v1`` maps a controller to its directory; ``v2`` is the unified tree."""

    v1: Mapping[str, str] = field(default_factory=dict)
    v2: str | None = None

    @classmethod
    def discover(cls, mountinfo: str = "/proc/self/mountinfo") -> Hierarchies:
        text = read_text(mountinfo)
        if text is None:
            raise OSError(f"cannot read {mountinfo}")
        return cls.from_mountinfo(text)

    @classmethod
    def from_mountinfo(cls, text: str) -> Hierarchies:
        v1, v2 = mountinfo.cgroup_hierarchies(mountinfo.parse(text))
        return cls(v1={k: v for k, v in v1.items() if k in V1_CONTROLLERS}, v2=v2)


def _prune(path: str) -> str:
    if path.endswith(INIT_SCOPE):
        path = path[: -len(INIT_SCOPE)] or "/"
    return path or "/"


def pruned_membership(text: str) -> Membership:
    """/proc/PID/cgroup (the project's one parser, ``syscontainer_tools.cgroup``),
    init.scope pruned, v1 controllers lxcfs reads only."""
    member = parse_membership(text)
    return Membership(v1={c: _prune(p) for c, p in member.v1.items() if c in V1_CONTROLLERS},
                      v2=None if member.v2 is None else _prune(member.v2))


def parse_cpu_list(text: str) -> tuple[int, ...] | None:
    """"0-3,8,10-11" -> (0, 1, 2, 3, 8, 10, 11); None when malformed."""
    cpus: set[int] = set()
    text = text.strip()
    if not text:
        return ()
    try:
        for part in text.split(","):
            lo, sep, hi = part.partition("-")
            first = int(lo)
            last = int(hi) if sep else first
            if first < 0 or last < first or last - first > 65536:
                return None
            cpus.update(range(first, last + 1))
    except ValueError:
        return None
    return tuple(sorted(cpus))


_cpu_list = functools.lru_cache(maxsize=256)(parse_cpu_list)


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _limit(text: str | None) -> int | None:
    """A limit file: None for "max", an absurdly large value, or unreadable."""
    if text is None or text.strip() == "max":
        return None
    value = _int(text)
    if value is None or value < 0 or value >= UNLIMITED:
        return None
    return value


def _keyed(text: str | None) -> dict[str, int]:
    """"key value" lines (memory.stat, cpu.stat) -> dict, skipping bad lines."""
    out: dict[str, int] = {}
    if not text:
        return out
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out


def _min(values: Iterator[int | None]) -> int | None:
    found = [v for v in values if v is not None]
    return min(found) if found else None


# memory.stat: v1 hierarchical totals -> the v2 names the views use.
_V1_STAT_NAMES = {
    "total_cache": "file",
    "total_rss": "anon",
    "total_shmem": "shmem",
    "total_mapped_file": "file_mapped",
    "total_dirty": "file_dirty",
    "total_writeback": "file_writeback",
    "total_active_anon": "active_anon",
    "total_inactive_anon": "inactive_anon",
    "total_active_file": "active_file",
    "total_inactive_file": "inactive_file",
    "total_unevictable": "unevictable",
    "total_rss_huge": "anon_thp",
    "total_swap": "swap",
}


@dataclass(frozen=True)
class Cgroup:
    """One controller's cgroup of one process: the mount, the path in it, the version."""

    mount: str
    path: str
    v2: bool

    @functools.cached_property
    def dir(self) -> str:
        return self.mount + self.path if self.path != "/" else self.mount

    def file(self, name: str) -> str:
        return f"{self.dir}/{name}"

    def read(self, name: str) -> str | None:
        return kernfile.held.read_text(self.file(name))

    def up(self) -> Iterator[Cgroup]:
        """This cgroup, then each ancestor up to and including the root."""
        return iter(_chain(self.mount, self.path, self.v2))

    def check_exists(self) -> None:
        if not os.path.isdir(self.dir):
            raise CgroupGone(self.dir)


@functools.lru_cache(maxsize=4096)
def _chain(mount: str, path: str, v2: bool) -> tuple[Cgroup, ...]:
    chain = []
    while True:
        chain.append(Cgroup(mount, path, v2))
        if path == "/":
            return tuple(chain)
        path = path.rsplit("/", 1)[0] or "/"


class CgroupReader:
    """Reads the cgroup values the views need, for one set of hierarchies."""

    def __init__(self, hierarchies: Hierarchies) -> None:
        self.hier = hierarchies

    def cgroup(self, m: Membership, controller: str) -> Cgroup | None:
        """The process's cgroup for a controller; None for the root or no such controller."""
        mount = self.hier.v1.get(controller)
        if mount is not None:
            path = m.v1.get(controller)
            v2 = False
        elif self.hier.v2 is not None and m.v2 is not None:
            mount, path, v2 = self.hier.v2, m.v2, True
        else:
            return None
        if path is None or path == "/":
            return None
        return Cgroup(mount, path, v2)

    def pressure(self, m: Membership, resource: str) -> str | None:
        """``<resource>.pressure`` of the process's v2 cgroup; None for the root or no v2."""
        if self.hier.v2 is None or m.v2 is None or m.v2 == "/":
            return None
        return Cgroup(self.hier.v2, m.v2, True).read(f"{resource}.pressure")

    # -- memory --------------------------------------------------------------

    def memory(self, m: Membership) -> Memory | None:
        cg = self.cgroup(m, "memory")
        if cg is None:
            return None
        return self._memory_v2(cg) if cg.v2 else self._memory_v1(cg)

    def _memory_v1(self, cg: Cgroup) -> Memory | None:
        usage_text = cg.read("memory.usage_in_bytes")
        if usage_text is None:
            cg.check_exists()
            return None
        usage = _int(usage_text) or 0
        raw = _keyed(cg.read("memory.stat"))
        stat = {new: raw[old] for old, new in _V1_STAT_NAMES.items() if old in raw}
        limit = _min(_limit(c.read("memory.limit_in_bytes")) for c in cg.up())
        hier_limit = _limit(str(raw["hierarchical_memory_limit"])) if "hierarchical_memory_limit" in raw else None
        limit = _min(iter((limit, hier_limit)))
        memsw_usage = _int(cg.read("memory.memsw.usage_in_bytes"))
        swap_limit = swap_usage = None
        if memsw_usage is not None:
            swap_limit = _min(_limit(c.read("memory.memsw.limit_in_bytes")) for c in cg.up())
            swap_usage = stat.get("swap", max(0, memsw_usage - usage))
        return Memory(
            limit=limit,
            usage=usage,
            stat=stat,
            swap_limit=swap_limit,
            swap_usage=swap_usage,
            swappiness=_int(cg.read("memory.swappiness")),
        )

    def _memory_v2(self, cg: Cgroup) -> Memory | None:
        usage_text = cg.read("memory.current")
        if usage_text is None:
            cg.check_exists()
            return None  # memory controller not enabled for this subtree
        ancestors = [c for c in cg.up() if c.path != "/"]
        swap_text = cg.read("memory.swap.current")
        swap_limit = None
        if swap_text is not None:
            swap_limit = _min(_limit(c.read("memory.swap.max")) for c in ancestors)
        return Memory(
            limit=_min(_limit(c.read("memory.max")) for c in ancestors),
            usage=_int(usage_text) or 0,
            stat=_keyed(cg.read("memory.stat")),
            swap_limit=swap_limit,
            swap_usage=_int(swap_text),
        )

    # -- cpus ----------------------------------------------------------------

    def cpuset(self, m: Membership, host_cpus: tuple[int, ...], cfs_quota: bool) -> CpuSet | None:
        """The CPUs to show, or None when the reader may use every host CPU."""
        allowed = host_cpus
        cg = self.cgroup(m, "cpuset")
        if cg is not None:
            names = ("cpuset.cpus.effective",) if cg.v2 else ("cpuset.effective_cpus", "cpuset.cpus")
            for name in names:
                text = cg.read(name)
                parsed = _cpu_list(text) if text is not None else None
                if parsed:
                    online = set(host_cpus)
                    allowed = tuple(c for c in parsed if c in online) or host_cpus
                    break
            else:
                cg.check_exists()
        shown = allowed
        if cfs_quota:
            quota = self.cpu_quota(m)
            if quota is not None:
                shown = allowed[: max(1, math.ceil(quota))]
        if shown == host_cpus and allowed == host_cpus:
            return None
        return CpuSet(cpus=shown, allowed=allowed)

    def cpu_quota(self, m: Membership) -> float | None:
        """The CFS bandwidth limit in CPUs (lowest up the tree), or None for none."""
        cg = self.cgroup(m, "cpu")
        if cg is None:
            return None
        ratios: list[float] = []
        for c in cg.up():
            if cg.v2:
                text = c.read("cpu.max")
                parts = text.split() if text else []
                if len(parts) == 2 and parts[0] != "max":
                    quota, period = _int(parts[0]), _int(parts[1])
                else:
                    continue
            else:
                quota = _int(c.read("cpu.cfs_quota_us"))
                if quota is None or quota <= 0:
                    continue   # -1: no quota here (the period does not matter)
                period = _int(c.read("cpu.cfs_period_us"))
            if quota is not None and period and quota > 0:
                ratios.append(quota / period)
        return min(ratios) if ratios else None

    def cpu_usage(self, m: Membership) -> CpuUsage | None:
        cg = self.cgroup(m, "cpuacct") if "cpuacct" in self.hier.v1 else self.cgroup(m, "cpu")
        if cg is None:
            return None
        if cg.v2:
            stat = _keyed(cg.read("cpu.stat"))
            if "usage_usec" not in stat:
                cg.check_exists()
                return None
            return CpuUsage(user_ns=stat.get("user_usec", 0) * 1000,
                            system_ns=stat.get("system_usec", 0) * 1000)
        text = cg.read("cpuacct.usage_all")
        if text is not None:
            per_cpu: dict[int, tuple[int, int]] = {}
            for line in text.splitlines()[1:]:
                parts = line.split()
                if len(parts) == 3 and all(p.isdigit() for p in parts):
                    per_cpu[int(parts[0])] = (int(parts[1]), int(parts[2]))
            if per_cpu:
                return CpuUsage(user_ns=sum(u for u, _ in per_cpu.values()),
                                system_ns=sum(s for _, s in per_cpu.values()),
                                per_cpu=per_cpu)
        user, system = _int(cg.read("cpuacct.usage_user")), _int(cg.read("cpuacct.usage_sys"))
        if user is not None and system is not None:
            return CpuUsage(user_ns=user, system_ns=system)
        total = _int(cg.read("cpuacct.usage"))
        if total is None:
            cg.check_exists()
            return None
        return CpuUsage(user_ns=total, system_ns=0)

    # -- block I/O -----------------------------------------------------------

    def io(self, m: Membership) -> IoStats | None:
        cg = self.cgroup(m, "blkio") if "blkio" in self.hier.v1 else self.cgroup(m, "io")
        if cg is None:
            return None
        if cg.v2:
            text = cg.read("io.stat")
            if text is None:
                cg.check_exists()
                return None
            return parse_io_stat(text)
        return self._io_v1(cg)

    def _io_v1(self, cg: Cgroup) -> IoStats | None:
        # CFQ (kernels < 5.0) has timings; without CFQ the throttle layer still
        # counts every bio, and BFQ only the devices it schedules.
        for prefix in ("blkio.", "blkio.throttle.", "blkio.bfq."):
            serviced = cg.read(prefix + "io_serviced_recursive") or cg.read(prefix + "io_serviced")
            if serviced is None:
                continue
            nbytes = cg.read(prefix + "io_service_bytes_recursive") or cg.read(prefix + "io_service_bytes")
            extra = {}
            if prefix == "blkio.":
                for name in ("io_merged", "io_wait_time", "io_service_time"):
                    extra[name] = parse_blkio(cg.read(f"blkio.{name}_recursive") or "")
            return blkio_counters(parse_blkio(serviced), parse_blkio(nbytes or ""), **extra)
        cg.check_exists()
        return None

    # -- tasks (for loadavg) -------------------------------------------------

    def tasks(self, m: Membership) -> list[int] | None:
        """Thread ids in the cgroup and its descendants; None for the root."""
        cg = None
        for ctrl in ("cpu", "cpuacct", "pids", "memory"):
            if ctrl in self.hier.v1:
                cg = self.cgroup(m, ctrl)
                break
        else:
            cg = self.cgroup(m, "cpu")
        if cg is None:
            return None
        name = "cgroup.threads" if cg.v2 else "tasks"
        tids: list[int] = []
        pending, seen = [cg.dir], 0
        while pending and seen < MAX_TASK_DIRS:
            d = pending.pop()
            seen += 1
            text = read_text(f"{d}/{name}")
            if text is None:
                if d == cg.dir:
                    cg.check_exists()
                continue
            tids.extend(int(t) for t in text.split() if t.isdigit())
            try:
                if os.stat(d).st_nlink == 2:
                    continue   # a directory's link count is 2 + its subdirectories
            except OSError:
                continue
            try:
                with os.scandir(d) as it:
                    pending.extend(e.path for e in it if e.is_dir(follow_symlinks=False))
            except OSError:
                continue
        return tids


def parse_io_stat(text: str) -> dict[tuple[int, int], DiskCounters]:
    """v2 io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N"."""
    out: dict[tuple[int, int], DiskCounters] = {}
    for line in text.splitlines():
        parts = line.split()
        dev = _devno(parts[0]) if parts else None
        if dev is None:
            continue
        kv: dict[str, int] = {}
        for item in parts[1:]:
            key, _, value = item.partition("=")
            if value.isdigit():
                kv[key] = int(value)
        out[dev] = DiskCounters(
            reads=kv.get("rios", 0),
            read_sectors=kv.get("rbytes", 0) // 512,
            writes=kv.get("wios", 0),
            write_sectors=kv.get("wbytes", 0) // 512,
            discards=kv.get("dios", 0),
            discard_sectors=kv.get("dbytes", 0) // 512,
        )
    return out


def _devno(text: str) -> tuple[int, int] | None:
    major, sep, minor = text.partition(":")
    if not sep or not major.isdigit() or not minor.isdigit():
        return None
    return int(major), int(minor)


def parse_blkio(text: str) -> dict[tuple[int, int], dict[str, int]]:
    """v1 blkio files: "MAJ:MIN Op value" lines (Op: Read, Write, Discard, Total...)."""
    out: dict[tuple[int, int], dict[str, int]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 3 or not parts[2].isdigit():
            continue
        dev = _devno(parts[0])
        if dev is not None:
            out.setdefault(dev, {})[parts[1]] = int(parts[2])
    return out


def blkio_counters(
    serviced: Mapping[tuple[int, int], Mapping[str, int]],
    service_bytes: Mapping[tuple[int, int], Mapping[str, int]],
    io_merged: Mapping[tuple[int, int], Mapping[str, int]] | None = None,
    io_wait_time: Mapping[tuple[int, int], Mapping[str, int]] | None = None,
    io_service_time: Mapping[tuple[int, int], Mapping[str, int]] | None = None,
) -> dict[tuple[int, int], DiskCounters]:
    """Combine v1 blkio tables into per-device counters (times in ns -> ms)."""
    empty: dict[str, int] = {}
    merged, wait, svc = io_merged or {}, io_wait_time or {}, io_service_time or {}
    out: dict[tuple[int, int], DiskCounters] = {}
    for dev in set(serviced) | set(service_bytes):
        n, b = serviced.get(dev, empty), service_bytes.get(dev, empty)
        mg, w, s = merged.get(dev, empty), wait.get(dev, empty), svc.get(dev, empty)

        def ms(op: str, w: Mapping[str, int] = w, s: Mapping[str, int] = s) -> int:
            return (s.get(op, 0) + w.get(op, 0)) // 1_000_000

        out[dev] = DiskCounters(
            reads=n.get("Read", 0),
            read_merged=mg.get("Read", 0),
            read_sectors=b.get("Read", 0) // 512,
            read_ms=ms("Read"),
            writes=n.get("Write", 0),
            write_merged=mg.get("Write", 0),
            write_sectors=b.get("Write", 0) // 512,
            write_ms=ms("Write"),
            io_ms=s.get("Total", 0) // 1_000_000,
            discards=n.get("Discard", 0),
            discard_merged=mg.get("Discard", 0),
            discard_sectors=b.get("Discard", 0) // 512,
            discard_ms=ms("Discard"),
        )
    return out
