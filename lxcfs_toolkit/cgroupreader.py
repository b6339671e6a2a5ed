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
from lxcfs_toolkit.blkio import blkio_counters, parse_blkio, parse_io_stat
from lxcfs_toolkit.cgroupfiles import (
    bint,
    limit_of,
    limit_value,
    lowest,
    named,
    parse_cpu_list,
    usage_all,
)
from lxcfs_toolkit.kernfile import read_text
from lxcfs_toolkit.views.inputs import CpuSet, CpuUsage, IoStats, Memory
from syscontainer_tools import mountinfo
from syscontainer_tools.cgroup import Membership, parse_membership
from syscontainer_tools.mountinfo import V1_CONTROLLERS

log = logging.getLogger(__name__)

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


@functools.lru_cache(maxsize=256)
def _cpu_list(raw: bytes) -> tuple[int, ...] | None:
    return parse_cpu_list(raw.decode("ascii", "replace"))


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
# memory.stat keys read from v1: the totals above, and the kernel's own minimum of
# the limits up the tree (saves reading every ancestor's limit files)
_V1_STAT_KEYS = {**{k.encode(): v for k, v in _V1_STAT_NAMES.items()},
                 b"hierarchical_memory_limit": "hierarchical_memory_limit",
                 b"hierarchical_memsw_limit": "hierarchical_memsw_limit"}
# memory.stat keys the views use (views/meminfo.py)
_V2_STAT_KEYS = {k.encode(): k for k in (
    "anon", "file", "shmem", "file_mapped", "file_dirty", "file_writeback", "active_anon",
    "inactive_anon", "active_file", "inactive_file", "unevictable", "anon_thp", "shmem_thp",
    "slab", "slab_reclaimable", "slab_unreclaimable", "swapcached")}
_CPU_STAT_KEYS = {b"usage_usec": "usage_usec", b"user_usec": "user_usec",
                  b"system_usec": "system_usec"}


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

    def raw(self, name: str) -> bytes | None:
        return kernfile.held.read(f"{self.dir}/{name}")

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
        return _chain(mount, path, v2)[0]   # one object per cgroup (its paths built once)

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
        usage_raw = cg.raw("memory.usage_in_bytes")
        if usage_raw is None:
            cg.check_exists()
            return None
        usage = bint(usage_raw) or 0
        stat = named(cg.raw("memory.stat"), _V1_STAT_KEYS)
        # the kernel's minimum up the tree (older kernels: without use_hierarchy the
        # cgroup's own limit, as then no ancestor limits it); else walk up ourselves
        hier, hier_sw = stat.pop("hierarchical_memory_limit", None), stat.pop("hierarchical_memsw_limit", None)
        if hier is not None:
            limit = limit_value(hier)
        else:
            limit = lowest(limit_of(c.raw("memory.limit_in_bytes")) for c in cg.up())
        memsw_usage = bint(cg.raw("memory.memsw.usage_in_bytes"))
        swap_limit = swap_usage = swappiness = None
        if memsw_usage is not None:
            if hier_sw is not None:
                swap_limit = limit_value(hier_sw)
            else:
                swap_limit = lowest(limit_of(c.raw("memory.memsw.limit_in_bytes")) for c in cg.up())
            swap_usage = stat.get("swap", max(0, memsw_usage - usage))
            swappiness = bint(cg.raw("memory.swappiness"))   # only matters with swap accounting
        return Memory(
            limit=limit,
            usage=usage,
            stat=stat,
            swap_limit=swap_limit,
            swap_usage=swap_usage,
            swappiness=swappiness,
        )

    def _memory_v2(self, cg: Cgroup) -> Memory | None:
        usage_raw = cg.raw("memory.current")
        if usage_raw is None:
            cg.check_exists()
            return None  # memory controller not enabled for this subtree
        ancestors = [c for c in cg.up() if c.path != "/"]
        swap_raw = cg.raw("memory.swap.current")
        swap_limit = None
        if swap_raw is not None:
            swap_limit = lowest(limit_of(c.raw("memory.swap.max")) for c in ancestors)
        return Memory(
            limit=lowest(limit_of(c.raw("memory.max")) for c in ancestors),
            usage=bint(usage_raw) or 0,
            stat=named(cg.raw("memory.stat"), _V2_STAT_KEYS),
            swap_limit=swap_limit,
            swap_usage=bint(swap_raw),
        )

    # -- cpus ----------------------------------------------------------------

    def cpuset(self, m: Membership, host_cpus: tuple[int, ...], cfs_quota: bool) -> CpuSet | None:
        """The CPUs to show, or None when the reader may use every host CPU."""
        allowed = host_cpus
        cg = self.cgroup(m, "cpuset")
        if cg is not None:
            names = ("cpuset.cpus.effective",) if cg.v2 else ("cpuset.effective_cpus", "cpuset.cpus")
            for name in names:
                raw = cg.raw(name)
                parsed = _cpu_list(raw) if raw is not None else None
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
            if c.path == "/":
                break   # the root has no quota (v1: fixed at -1; v2: no cpu.max)
            if cg.v2:
                raw = c.raw("cpu.max")
                parts = raw.split() if raw else []
                if len(parts) == 2 and parts[0] != b"max":
                    quota, period = bint(parts[0]), bint(parts[1])
                else:
                    continue
            else:
                quota = bint(c.raw("cpu.cfs_quota_us"))
                if quota is None or quota <= 0:
                    continue   # -1: no quota here (the period does not matter)
                period = bint(c.raw("cpu.cfs_period_us"))
            if quota is not None and period and quota > 0:
                ratios.append(quota / period)
        return min(ratios) if ratios else None

    def cpu_usage(self, m: Membership) -> CpuUsage | None:
        cg = self.cgroup(m, "cpuacct") if "cpuacct" in self.hier.v1 else self.cgroup(m, "cpu")
        if cg is None:
            return None
        if cg.v2:
            stat = named(cg.raw("cpu.stat"), _CPU_STAT_KEYS)
            if "usage_usec" not in stat:
                cg.check_exists()
                return None
            return CpuUsage(user_ns=stat.get("user_usec", 0) * 1000,
                            system_ns=stat.get("system_usec", 0) * 1000)
        raw = cg.raw("cpuacct.usage_all")
        if raw is not None:
            per_cpu = usage_all(raw)
            if per_cpu:
                return CpuUsage(user_ns=sum(u for u, _ in per_cpu.values()),
                                system_ns=sum(s for _, s in per_cpu.values()),
                                per_cpu=per_cpu)
        user, system = bint(cg.raw("cpuacct.usage_user")), bint(cg.raw("cpuacct.usage_sys"))
        if user is not None and system is not None:
            return CpuUsage(user_ns=user, system_ns=system)
        total = bint(cg.raw("cpuacct.usage"))
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
            raw = kernfile.held.read(f"{d}/{name}")
            if raw is None:
                if d == cg.dir:
                    cg.check_exists()
                continue
            try:
                tids.extend(map(int, raw.split()))
            except ValueError:
                tids.extend(int(t) for t in raw.split() if t.isdigit())
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
