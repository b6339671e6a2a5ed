"""What the views need to know about a container, independent of cgroup version.

``lxcfs_toolkit.cgroupreader`` builds these from cgroup v1 or v2 files; the view
functions turn them (plus the host's own /proc text) into file contents.
``None`` in place of one of these objects always means "the reader is in the
host's root cgroup for that controller": the view then answers with the
host's own file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Memory:
    """Memory limits and usage of one cgroup, in bytes.

    ``limit`` is the lowest limit on the path from the cgroup up to the root
    (None: unlimited). ``stat`` uses the cgroup v2 memory.stat key names
    (file, anon, shmem, file_mapped, file_dirty, file_writeback, active_anon,
    inactive_anon, active_file, inactive_file, unevictable, anon_thp, slab,
    slab_reclaimable, slab_unreclaimable); v1 totals are renamed to those.
    ``swap_limit`` is the most swap the cgroup may use (v1: the memsw limit,
    v2: memory.swap.max, each the lowest up the tree; None: unlimited) and
    ``swap_usage`` the swap it uses now (None: swap accounting is off).
    """

    limit: int | None
    usage: int
    stat: Mapping[str, int] = field(default_factory=dict)
    swap_limit: int | None = None
    swap_usage: int | None = None
    swappiness: int | None = None


@dataclass(frozen=True)
class CpuSet:
    """The host CPUs a container may use.

    ``cpus`` is what the views show, renumbered from 0 in this order: the
    cpuset's CPUs, possibly cut to the first N by the CFS quota.
    ``allowed`` is the whole cpuset (equal to ``cpus`` when no quota cut).
    """

    cpus: tuple[int, ...]
    allowed: tuple[int, ...]

    @property
    def limited_by_quota(self) -> bool:
        return len(self.cpus) < len(self.allowed)


@dataclass(frozen=True)
class CpuUsage:
    """CPU time used by a cgroup, in nanoseconds.

    ``per_cpu`` maps a host CPU to (user, system) where the cgroup version
    provides it (v1 cpuacct.usage_all); the totals are always set.
    """

    user_ns: int
    system_ns: int
    per_cpu: Mapping[int, tuple[int, int]] | None = None

    @property
    def total_ns(self) -> int:
        return self.user_ns + self.system_ns


@dataclass(frozen=True)
class DiskCounters:
    """One device's counters in /proc/diskstats terms (sectors of 512 bytes, ms)."""

    reads: int = 0
    read_merged: int = 0
    read_sectors: int = 0
    read_ms: int = 0
    writes: int = 0
    write_merged: int = 0
    write_sectors: int = 0
    write_ms: int = 0
    in_flight: int = 0
    io_ms: int = 0
    weighted_ms: int = 0
    discards: int = 0
    discard_merged: int = 0
    discard_sectors: int = 0
    discard_ms: int = 0

    def any(self) -> bool:
        return any(getattr(self, name) for name in self.__dataclass_fields__)


# (major, minor) -> counters, for the devices the cgroup has done I/O on.
IoStats = Mapping[tuple[int, int], DiskCounters]


@dataclass(frozen=True)
class Load:
    """A container's load averages and task counts, as /proc/loadavg shows them."""

    avg1: float
    avg5: float
    avg15: float
    running: int
    total: int
    last_pid: int
