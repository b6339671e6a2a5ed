"""The FUSE filesystem: find the reader, read its cgroups, call a view.

The FUSE loop (``fuseloop.py``) calls ``LxcfsOperations(op, *args)`` for
the requests it serves; what it does not serve gets ENOSYS, and the kernel
stops sending FLUSH after the first one.

Reading: the read at offset 0 renders the file for the calling process and
keeps the bytes with the open file; reads at offset > 0 slice that same
snapshot, so a reader using small buffers sees one consistent file. A
rendering is also kept for ``cache_ttl`` seconds (0.1) under the key
(file, the text of the viewed process's /proc/PID/cgroup): two readers share
it only when every one of their cgroups is the same. The host's
/proc/meminfo, the base of every container's meminfo, is shared the same
way for ``cache_ttl``; /proc/stat is read for every rendering (a stale host
line next to fresh cgroup usage could make idle time go backwards).
cgroup files and each namespace init's /proc/PID/cgroup stay open between
renderings (``kernfile.OpenFiles``).  Whose view a reader gets (its namespace's
init and that one's cgroups) is looked up once per ``READER_TTL`` (20 ms): a
monitor reads its files in a burst.

Everything that goes wrong while rendering is answered with EIO and logged;
nothing a reader or a cgroup does can stop the daemon.
"""

from __future__ import annotations

import errno
import itertools
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from typing import Any

from lxcfs_toolkit import kernfile
from lxcfs_toolkit.cgroupfiles import parse_cpu_list
from lxcfs_toolkit.cgroupreader import (
    CgroupGone,
    CgroupReader,
    Hierarchies,
    pruned_membership,
)
from lxcfs_toolkit.heldgil import read_small
from lxcfs_toolkit.kernfile import read_bytes
from lxcfs_toolkit.loadavg import LoadTracker
from lxcfs_toolkit.pidns import PidNamespaces, ReaderGone
from lxcfs_toolkit.views.cpuinfo import render_cpuinfo
from lxcfs_toolkit.views.cpuonline import render_cpu_online
from lxcfs_toolkit.views.diskstats import render_diskstats, render_partitions
from lxcfs_toolkit.views.inputs import CpuSet
from lxcfs_toolkit.views.loadavg import render_loadavg
from lxcfs_toolkit.views.meminfo import render_meminfo
from lxcfs_toolkit.views.pressure import RESOURCES, render_pressure
from lxcfs_toolkit.views.stat import render_stat
from lxcfs_toolkit.views.swaps import render_swaps
from lxcfs_toolkit.views.uptime import render_uptime
from syscontainer_tools.cgroup import Membership

log = logging.getLogger(__name__)

PROC_FILES = ("cpuinfo", "meminfo", "stat", "uptime", "diskstats", "swaps", "loadavg", "partitions")
CPU_ONLINE = "/sys/devices/system/cpu/online"
FILES = {**{f"/proc/{name}": name for name in PROC_FILES}, CPU_ONLINE: "cpu_online"}
DIRS = {
    "/": ("proc", "sys"),
    "/proc": PROC_FILES,
    "/sys": ("devices",),
    "/sys/devices": ("system",),
    "/sys/devices/system": ("cpu",),
    "/sys/devices/system/cpu": ("online",),
}
# /proc/pressure/* only where the host has PSI (CONFIG_PSI, not psi=0)
PRESSURE_FILES = {f"/proc/pressure/{r}": f"pressure_{r}" for r in RESOURCES}


def tree(proc: str = "/proc") -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """(directories, files) the mount shows, for a host with this /proc."""
    dirs, files = dict(DIRS), dict(FILES)
    if os.path.isdir(os.path.join(proc, "pressure")):
        dirs["/proc"] = (*PROC_FILES, "pressure")
        dirs["/proc/pressure"] = RESOURCES
        files.update(PRESSURE_FILES)
    return dirs, files
SIZE_FLOOR = 64 << 10
MEMBERSHIPS_MAX = 4096  # parsed /proc/PID/cgroup texts kept (one per cgroup set)
READER_TTL = 0.02  # whose view a reader gets is looked up once per round of files it reads
CPUINFO_TTL = 1.0  # host cpuinfo is re-read at most once a second (only "cpu MHz" moves)


class FuseError(OSError):
    """An errno for the kernel (the FUSE loop turns any OSError into -errno)."""

    def __init__(self, err: int) -> None:
        super().__init__(err, os.strerror(err))


class _Handle:
    __slots__ = ("kind", "data")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.data: bytes | None = None


class LxcfsOperations:
    use_ns = True  # timestamps in nanoseconds

    def __init__(
        self,
        hierarchies: Hierarchies | None = None,
        *,
        proc: str = "/proc",
        cpu_online: str = CPU_ONLINE,
        cfs_quota: bool = True,
        cache_ttl: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
        context: Callable[[], tuple[int, int, int]] | None = None,
    ) -> None:
        self.reader = CgroupReader(hierarchies if hierarchies is not None else Hierarchies.discover())
        self.proc = proc
        self.cpu_online_path = cpu_online
        self.cfs_quota = cfs_quota
        self.cache_ttl = min(cache_ttl, 0.1)
        self.clock = clock
        self.pidns = PidNamespaces(proc)
        self.loads = LoadTracker(clock)
        self.clk_tck = os.sysconf("SC_CLK_TCK")
        self._context = context
        self._handles: dict[int, _Handle] = {}
        self._fh = itertools.count(1)
        self._cache: dict[tuple[Any, ...], tuple[float, bytes]] = {}
        # reader pid -> (until, pid whose cgroups count, its namespace init, its cgroup text)
        self._readers: dict[int, tuple[float, int, int | None, bytes]] = {}
        self._cache_lock = threading.Lock()
        self._next_sweep = 0.0
        self._cpuinfo: tuple[float, bytes] = (-1.0, b"")
        self._memberships: dict[bytes, Membership] = {}
        self._load_keys: dict[int, tuple[Membership, str]] = {}
        self._host_cpu_list: tuple[bytes, tuple[int, ...]] = (b"", (0,))
        self._host_cpus_until = 0.0
        self._recent: dict[str, tuple[float, bytes]] = {}
        now_ns = time.time_ns()
        self._dir_attr = {"st_mode": stat.S_IFDIR | 0o555, "st_nlink": 2,
                          "st_atime": now_ns, "st_mtime": now_ns, "st_ctime": now_ns}
        file_attr = {"st_mode": stat.S_IFREG | 0o444, "st_nlink": 1,
                     "st_atime": now_ns, "st_mtime": now_ns, "st_ctime": now_ns}
        self.dirs, self.files = tree(proc)
        self._file_attrs = {path: {**file_attr, "st_size": self._size_bound(path)}
                            for path in self.files}
        self._renderers: dict[str, Callable[[Membership, int, int | None, int], bytes]] = {
            "meminfo": self._meminfo,
            "cpuinfo": self._cpuinfo_view,
            "stat": self._stat,
            "uptime": self._uptime,
            "diskstats": self._diskstats,
            "partitions": self._partitions,
            "swaps": self._swaps,
            "loadavg": self._loadavg,
            "cpu_online": self._cpu_online,
            **{f"pressure_{r}": self._pressure_view(r) for r in RESOURCES},
        }

    # -- FUSE loop entry points ----------------------------------------------

    def __call__(self, op: str, *args: Any) -> Any:
        return getattr(self, op)(*args)

    def _size_bound(self, path: str) -> int:
        """st_size of a file: an upper bound of every reader's rendering.

        Readers that splice or sendfile (busybox cat) stop at st_size even
        with direct_io, so 0 (procfs's answer) would show them an empty file.
        A per-reader exact size cannot survive the kernel's attribute cache,
        which is shared by all readers; a bound the same for everyone can.
        A container's view is never larger than the host's own file, so four
        times the host's size (at least 64 KiB) bounds it; read() and splice
        both end at the real end of the rendering."""
        host = self._host_path(self.files[path])
        try:
            with open(host, "rb") as f:
                size = len(f.read())
        except OSError:
            size = 0
        return max(SIZE_FLOOR, (4 * size + 4095) // 4096 * 4096)

    def _host_path(self, kind: str) -> str:
        if kind == "cpu_online":
            return self.cpu_online_path
        if kind.startswith("pressure_"):
            return os.path.join(self.proc, "pressure", kind[len("pressure_"):])
        return os.path.join(self.proc, kind)

    def host(self, kind: str) -> bytes:
        """The host's own file ``kind`` (virtualisation off: SIGUSR2)."""
        data = read_bytes(self._host_path(kind))
        if data is None:
            raise FuseError(errno.EIO)
        return data

    def attr(self, path: str) -> dict[str, int]:
        return self.getattr(path)

    def getattr(self, path: str, fh: Any = None) -> dict[str, int]:
        attr = self._file_attrs.get(path)
        if attr is not None:
            return attr
        if path in self.dirs:
            return self._dir_attr
        raise FuseError(errno.ENOENT)

    def readdir(self, path: str, fh: Any) -> list[str]:
        entries = self.dirs.get(path)
        if entries is None:
            raise FuseError(errno.ENOTDIR if path in self.files else errno.ENOENT)
        return [".", "..", *entries]

    def open(self, path: str, fi: Any) -> int:
        kind = self.files.get(path)
        if kind is None:
            raise FuseError(errno.EISDIR if path in self.dirs else errno.ENOENT)
        if fi.flags & os.O_ACCMODE != os.O_RDONLY:
            raise FuseError(errno.EACCES)
        fh = next(self._fh)
        self._handles[fh] = _Handle(kind)
        fi.fh = fh
        fi.direct_io = 1  # sizes differ per reader: never let the page cache answer
        return 0

    def read(self, path: str, size: int, offset: int, fi: Any) -> bytes:
        handle = self._handles.get(fi.fh)
        if handle is None:
            raise FuseError(errno.EBADF)
        data = handle.data
        if offset == 0 or data is None:
            data = handle.data = self.render(handle.kind, self._caller())
        return data[offset : offset + size]

    def release(self, path: str, fi: Any) -> int:
        self._handles.pop(fi.fh, None)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        return {"f_bsize": 4096, "f_namemax": 255}

    # -- rendering ------------------------------------------------------------

    def _caller(self) -> int:
        if self._context is not None:
            return self._context()[2]
        from fuse import fuse_get_context

        return int(fuse_get_context()[2])

    def render(self, kind: str, pid: int) -> bytes:
        """The file ``kind`` as process ``pid`` should see it; FuseError(EIO...) on failure."""
        try:
            now = self.clock()
            seen = self._readers.get(pid)
            if seen is not None and seen[0] > now:
                _, target, init, cg_text = seen
            else:
                target, init = self.pidns.view_pid(pid)
                path = f"{self.proc}/{target}/cgroup"
                # a namespace's init is looked at again and again: keep its file open
                # (a dead process's file fails with ESRCH and is opened anew)
                found = read_small(path.encode()) if init is None else kernfile.held.read(path)
                if found is None:
                    raise ReaderGone(target)
                cg_text = found
                self._readers[pid] = (now + min(READER_TTL, self.cache_ttl), target, init, cg_text)
            key = (kind, cg_text, init) if kind == "uptime" else (kind, cg_text)
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                return hit[1]
            membership = self._memberships.get(cg_text)
            if membership is None:
                membership = pruned_membership(cg_text.decode("utf-8", "replace"))
                if len(self._memberships) >= MEMBERSHIPS_MAX:
                    self._memberships.clear()
                self._memberships[cg_text] = membership
            data = self._renderers[kind](membership, target, init, pid)
            self._remember(key, now, data)
            return data
        except ReaderGone as err:
            log.debug("%s: reader %s gone", kind, err)
            raise FuseError(errno.ESRCH) from None
        except CgroupGone as err:
            log.info("%s for pid %d: cgroup %s vanished", kind, pid, err)
            raise FuseError(errno.EIO) from None
        except FuseError:
            raise
        except Exception:
            log.exception("%s for pid %d: rendering failed", kind, pid)
            raise FuseError(errno.EIO) from None

    def _remember(self, key: tuple[Any, ...], now: float, data: bytes) -> None:
        self._cache[key] = (now + self.cache_ttl, data)
        if now >= self._next_sweep:
            with self._cache_lock:
                self._next_sweep = now + 5.0
                for k in [k for k, (exp, _) in list(self._cache.items()) if exp <= now]:
                    self._cache.pop(k, None)
                for r in [r for r, seen in list(self._readers.items()) if seen[0] <= now]:
                    self._readers.pop(r, None)

    def _host(self, name: str) -> bytes:
        data = kernfile.held.read(f"{self.proc}/{name}")
        if data is None:
            raise OSError(errno.EIO, f"cannot read {self.proc}/{name}")
        return data

    def _host_recent(self, name: str) -> bytes:
        """A host file as read at most ``cache_ttl`` ago, shared by every container's
        rendering (the same age bound as a cached rendering): /proc/meminfo only,
        whose values carry no counter that must grow between two reads."""
        now = self.clock()
        hit = self._recent.get(name)
        if hit is not None and hit[0] > now:
            return hit[1]
        data = self._host(name)
        self._recent[name] = (now + self.cache_ttl, data)
        return data

    def _host_cpus(self) -> tuple[int, ...]:
        """The host's online CPUs, as read at most ``cache_ttl`` ago (a sysfs file:
        opened and closed on every read, so it is shared like host meminfo)."""
        now = self.clock()
        if now < self._host_cpus_until:
            return self._host_cpu_list[1]
        text = kernfile.held.read(self.cpu_online_path)
        last_text, last = self._host_cpu_list
        self._host_cpus_until = now + self.cache_ttl
        if text == last_text:
            return last
        cpus = parse_cpu_list(text.decode()) if text else None
        self._host_cpu_list = (text or b"", cpus or (0,))
        return cpus or (0,)

    def _cpuset(self, m: Membership) -> CpuSet | None:
        return self.reader.cpuset(m, self._host_cpus(), self.cfs_quota)

    def _meminfo(self, m: Membership, pid: int, init: int | None, reader: int) -> bytes:
        return render_meminfo(self.reader.memory(m), self._host_recent("meminfo"))

    def _swaps(self, m: Membership, pid: int, init: int | None, reader: int) -> bytes:
        mem = self.reader.memory(m)
        return render_swaps(mem, self._host_recent("meminfo"), self._host("swaps"))

    def _cpuinfo_view(self, m: Membership, pid: int, init: int | None, reader: int) -> bytes:
        now = self.clock()
        when, host = self._cpuinfo
        if now - when > CPUINFO_TTL or not host:
            host = self._host("cpuinfo")
            self._cpuinfo = (now, host)
        return render_cpuinfo(self._cpuset(m), host)

    def _cpu_online(self, m: Membership, pid: int, init: int | None, reader: int) -> bytes:
        host = kernfile.held.read(self.cpu_online_path) or b"0\n"
        return render_cpu_online(self._cpuset(m), host)

    def _stat(self, m: Membership, pid: int, init: int | None, reader: int) -> bytes:
        return render_stat(self._cpuset(m), self.reader.cpu_usage(m), self._host("stat"), self.clk_tck)

    def _uptime(self, m: Membership, pid: int, init: int | None, reader: int) -> bytes:
        if init is None:
            return self._host("uptime")  # the host's pid namespace: the host's uptime
        stat_text = read_bytes(f"{self.proc}/{init}/stat")
        if stat_text is None:
            raise ReaderGone(init)
        start_ticks = int(stat_text[stat_text.rfind(b")") + 2 :].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - start_ticks / self.clk_tck
        cpus = self._cpuset(m)
        ncpus = len(cpus.cpus) if cpus else len(self._host_cpus())
        usage = self.reader.cpu_usage(m)
        return render_uptime(age, ncpus, usage.total_ns if usage else None)

    def _diskstats(self, m: Membership, pid: int, init: int | None, reader: int) -> bytes:
        return render_diskstats(self.reader.io(m), self._host("diskstats"))

    def _partitions(self, m: Membership, pid: int, init: int | None, reader: int) -> bytes:
        return render_partitions(self.reader.io(m), self._host("partitions"))

    def _pressure_view(self, resource: str) -> Callable[[Membership, int, int | None, int], bytes]:
        def view(m: Membership, pid: int, init: int | None, reader: int) -> bytes:
            return render_pressure(self.reader.pressure(m, resource),
                                   self.host(f"pressure_{resource}"))
        return view

    def _loadavg(self, m: Membership, pid: int, init: int | None, reader: int) -> bytes:
        tids = self.reader.tasks(m)
        if tids is None:
            return render_loadavg(None, self._host("loadavg"))
        known = self._load_keys.get(id(m))
        if known is None or known[0] is not m:   # memberships are kept: ids are stable
            if len(self._load_keys) >= MEMBERSHIPS_MAX:
                self._load_keys.clear()
            known = self._load_keys[id(m)] = (m, repr(sorted(m.v1.items())) + str(m.v2))
        return render_loadavg(self.loads.sample(known[1], tids, self.proc, reader), b"")
